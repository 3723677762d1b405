// Who is audited: the config's monitor.audit.users and the patterns added through the center or `postern audit users`
// (table audit_users). Every process keeps both in memory and re-reads the table every few seconds, and at once when
// a change is announced on the policy bus, so a proxy follows an admin's change within seconds. A session is
// audited or not from its login on (audit/trail.ts): a change applies to the next login, never halfway through.
import type { Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import { addressMatches } from '../../policy/match.ts';

/** What the trail asks at a login: is this user audited? */
export interface AuditMatcher {
  has(user: string): boolean;
}

export class AuditPatternError extends Error {
  override name = 'AuditPatternError';
}

const DOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/** An address, *@domain or *, trimmed and lower-cased; anything else is an AuditPatternError saying what is wrong. */
export function auditPattern(text: string): string {
  const p = text.trim().toLowerCase();
  if (!p) throw new AuditPatternError('empty: expected an address, *@domain or *');
  if (p.length > 320) throw new AuditPatternError('longer than 320 characters');
  if (p === '*') return p;
  const at = p.lastIndexOf('@');
  const local = p.slice(0, at);
  const domain = p.slice(at + 1);
  if (at <= 0 || !DOMAIN.test(domain) || (local !== '*' && (/[\s@*"<>(),;:\\[\]]/.test(local) || local.length > 64))) {
    throw new AuditPatternError(`"${text.trim()}" is neither an address, *@domain nor *`);
  }
  return p;
}

export interface AuditUser {
  pattern: string;
  /** config: monitor.audit.users (changed only in the config file); store: added through the center or the CLI. */
  source: 'config' | 'store';
  added_by: string | null;
  added_at: number | null;
}

/** Every audited pattern: the config's first, then the store's in the order they were added. */
export async function listAuditUsers(db: Kysely<DB>, configured: readonly string[]): Promise<AuditUser[]> {
  const rows = await db.selectFrom('audit_users').selectAll().orderBy('added_at').orderBy('pattern').execute();
  const conf = [...new Set(configured.map((p) => p.toLowerCase()))];
  return [
    ...conf.map((pattern): AuditUser => ({ pattern, source: 'config', added_by: null, added_at: null })),
    ...rows.filter((r) => !conf.includes(r.pattern)).map((r): AuditUser => ({ pattern: r.pattern, source: 'store', added_by: r.added_by, added_at: Number(r.added_at) })),
  ];
}

/** Adds a pattern (already checked with auditPattern); `created` is false when it was there. */
export async function addAuditUser(db: Kysely<DB>, pattern: string, by: string, now = Date.now()): Promise<{ user: AuditUser; created: boolean }> {
  const r = await db.insertInto('audit_users').values({ pattern, added_by: by, added_at: now }).onConflict((oc) => oc.column('pattern').doNothing()).executeTakeFirst();
  const row = await db.selectFrom('audit_users').selectAll().where('pattern', '=', pattern).executeTakeFirstOrThrow();
  return { user: { pattern, source: 'store', added_by: row.added_by, added_at: Number(row.added_at) }, created: Number(r.numInsertedOrUpdatedRows ?? 0) > 0 };
}

/** Removes a pattern of the table; false when it was not there. */
export async function removeAuditUser(db: Kysely<DB>, pattern: string): Promise<boolean> {
  const r = await db.deleteFrom('audit_users').where('pattern', '=', pattern).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** The audited patterns of this process: the config's, and the table's as last read. */
export class AuditedUsers implements AuditMatcher {
  private stored: readonly string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private loading: Promise<void> | null = null;
  private again = false;
  private readonly db: Kysely<DB>;
  readonly configured: readonly string[];
  private readonly onError: (err: Error) => void;

  constructor(db: Kysely<DB>, configured: readonly string[], onError: (err: Error) => void = () => undefined) {
    this.db = db;
    this.configured = configured;
    this.onError = onError;
  }

  get patterns(): readonly string[] {
    return [...this.configured, ...this.stored];
  }

  has(user: string): boolean {
    return this.configured.some((p) => addressMatches(p, user)) || this.stored.some((p) => addressMatches(p, user));
  }

  /** The patterns that make this user audited (none: not audited). */
  matching(user: string): string[] {
    return this.patterns.filter((p) => addressMatches(p, user));
  }

  /** Reads the table; a read asked for during another waits for it and then reads again. */
  load(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          const rows = await this.db.selectFrom('audit_users').select('pattern').orderBy('pattern').execute();
          this.stored = rows.map((r) => r.pattern);
        } while (this.again);
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  /** Re-reads the table every `ms` (a change made with the CLI, or announced where no bus reaches). */
  watch(ms: number): void {
    this.stop();
    this.timer = setInterval(() => this.load().catch(this.onError), ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** A fixed list, for a part started without the store's table (tests, tools). */
export const fixedAudit = (patterns: readonly string[]): AuditMatcher => ({ has: (user) => patterns.some((p) => addressMatches(p, user)) });
