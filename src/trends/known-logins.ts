// The addresses each mailbox user logged in from (table mailbox_logins), learned by the trend analyzer from the
// monitor's auth.succeeded events. The analyzer rather than the proxy writes them: the event is already on its way
// to the store (durable, also from a cluster's workers, which write nothing themselves), so the login path adds no
// write and waits for none. The proxy covers the analyzer's lag with its own memory of recent logins
// (monitor/known-logins.ts).
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import type { MatrixEvent } from './detector.ts';
import { plainIp, str } from './detector.ts';

export const KNOWN_LOGIN_TYPES = ['auth.succeeded'] as const;

/** Pairs folded between writes; past this a write is due at once (a burst of logins must not grow memory). */
const MAX_PENDING = 10_000;
/** Rows one purge statement deletes at most (about). */
const PURGE_BATCH = 2_000;

interface Pending {
  user: string;
  ip: string;
  first: number;
  last: number;
  n: number;
}

/** Folds successful logins into per (user, address) deltas until they are written. */
export class KnownLogins {
  private readonly pending = new Map<string, Pending>();

  observe(e: MatrixEvent): void {
    if (e.type !== 'auth.succeeded' || !e.ip) return;
    const user = str(e.data.user)?.trim().toLowerCase();
    if (!user) return;
    const ip = plainIp(e.ip);
    const key = `${user}\u0000${ip}`;
    const p = this.pending.get(key);
    if (p) {
      p.first = Math.min(p.first, e.ts);
      p.last = Math.max(p.last, e.ts);
      p.n++;
    } else this.pending.set(key, { user, ip, first: e.ts, last: e.ts, n: 1 });
  }

  get size(): number {
    return this.pending.size;
  }

  get full(): boolean {
    return this.pending.size >= MAX_PENDING;
  }

  /**
   * Writes the deltas, merging with what is stored (earliest first, latest last, counts added). What fails stays
   * pending for the next write. Written apart from the analyzer's cursor: after a crash in between, a replay adds
   * those logins' counts twice, which changes no decision (first_ok and last_ok merge the same either way).
   */
  async flush(db: Kysely<DB>): Promise<number> {
    if (!this.pending.size) return 0;
    const rows = [...this.pending.values()];
    this.pending.clear();
    try {
      for (let i = 0; i < rows.length; i += 500) {
        await db
          .insertInto('mailbox_logins')
          .values(rows.slice(i, i + 500).map((r) => ({ user: r.user, ip: r.ip, first_ok: r.first, last_ok: r.last, logins: r.n })))
          .onConflict((oc) =>
            oc.columns(['user', 'ip']).doUpdateSet((eb) => ({
              first_ok: eb.case().when('excluded.first_ok', '<', eb.ref('mailbox_logins.first_ok')).then(eb.ref('excluded.first_ok')).else(eb.ref('mailbox_logins.first_ok')).end(),
              last_ok: eb.case().when('excluded.last_ok', '>', eb.ref('mailbox_logins.last_ok')).then(eb.ref('excluded.last_ok')).else(eb.ref('mailbox_logins.last_ok')).end(),
              logins: eb('mailbox_logins.logins', '+', eb.ref('excluded.logins')),
            })),
          )
          .execute();
      }
    } catch (err) {
      for (const r of rows) {
        const key = `${r.user}\u0000${r.ip}`;
        const now = this.pending.get(key);
        this.pending.set(key, now ? { ...r, first: Math.min(r.first, now.first), last: Math.max(r.last, now.last), n: r.n + now.n } : r);
      }
      throw err;
    }
    return rows.length;
  }
}

/**
 * Deletes addresses whose last login is older than `before`, oldest first, about BATCH rows per statement so that
 * no statement holds SQLite's one writer for long; returns how many.
 */
export async function purgeKnownLogins(db: Kysely<DB>, before: number): Promise<number> {
  let n = 0;
  for (;;) {
    const edge = await db.selectFrom('mailbox_logins').select('last_ok').where('last_ok', '<', before).orderBy('last_ok').offset(PURGE_BATCH).limit(1).executeTakeFirst();
    const upTo = edge ? Number(edge.last_ok) : before;
    const r = await db.deleteFrom('mailbox_logins').where('last_ok', '<', upTo).executeTakeFirst();
    n += Number(r.numDeletedRows);
    if (!edge) return n;
    // Rows that all share the edge's time: take them in one go rather than loop on an empty delete.
    if (!Number(r.numDeletedRows)) n += Number((await db.deleteFrom('mailbox_logins').where('last_ok', '<=', upTo).executeTakeFirst()).numDeletedRows);
    await new Promise((res) => setTimeout(res, 10));
  }
}
