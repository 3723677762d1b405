// The quarantine's operations, shared by the CLI, the HTTP pages behind digest links and the API: list, show,
// release, delete, allow or block the sender, report as spam or not spam, and the purge of expired copies.
// Every action is recorded as an event with who did it.
import type { Kysely, Selectable } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { Emit } from '../core/events.ts';
import { domainOf } from '../core/address.ts';
import type { DB, QuarantineTable } from '../store/schema.ts';
import type { Spool } from '../gateway/spool.ts';
import type { BlobStore } from './blobs.ts';
import { enqueue } from './enqueue.ts';
import { addPolicy, listPolicies, type PolicyRow } from '../policy/admin.ts';
import { learnItem } from '../analysis/bayes/learn.ts';
import { learnBatch } from '../analysis/bayes/store.ts';

export type QuarantineStatus = 'held' | 'released' | 'deleted' | 'expired';

export interface QuarantineEntry {
  id: string;
  msg_id: string;
  rcpt: string;
  sender: string;
  subject: string | null;
  reason: string;
  score: number;
  symbols: { name: string; score: number; detail?: string; rcpt?: string }[];
  policies: string[];
  size: number;
  created_at: number;
  expires_at: number;
  status: QuarantineStatus;
  acted_at: number | null;
  acted_by: string | null;
}

export interface QuarantineFilter {
  rcpt?: string;
  /** Only these recipients (a user account's addresses); an empty list matches nothing. */
  rcptIn?: readonly string[];
  /** Addresses of one domain: "example.com". */
  domain?: string;
  sender?: string;
  status?: QuarantineStatus | 'any';
  /** Substring of the subject, case-insensitive. */
  subject?: string;
  since?: number;
  until?: number;
  limit?: number;
  offset?: number;
}

/** Who did something: "cli:root", "admin:alice", "user:bob@example.com", "link:bob@example.com", "api". */
export type Actor = string;

export type ListScope = 'user' | 'domain' | 'global';

export class QuarantineError extends Error {
  override name = 'QuarantineError';
  constructor(
    readonly code: 'not_found' | 'not_held' | 'bad_request',
    message: string,
  ) {
    super(message);
  }
}

export interface QuarantineDeps {
  db: Kysely<DB>;
  blobs: BlobStore;
  spool: Spool;
  config: Config;
  emit: Emit;
  /** Makes committed rows durable (StoreDb.durable). */
  durable: () => Promise<void>;
  /** Hands a queued message to this process's relay at once; without one, a relay's poll picks it up. */
  submit?: (queueId: string) => void;
}

type Row = Selectable<QuarantineTable>;

function toEntry(r: Row): QuarantineEntry {
  return {
    id: r.id,
    msg_id: r.msg_id,
    rcpt: r.rcpt,
    sender: r.sender,
    subject: r.subject,
    reason: r.reason,
    score: Number(r.score),
    symbols: safeJson(r.symbols, []),
    policies: safeJson(r.policy, []),
    size: Number(r.size),
    created_at: Number(r.created_at),
    expires_at: Number(r.expires_at),
    status: r.status as QuarantineStatus,
    acted_at: r.acted_at === null ? null : Number(r.acted_at),
    acted_by: r.acted_by,
  };
}

function safeJson<T>(s: string | null, fallback: T): T {
  try {
    return s ? (JSON.parse(s) as T) : fallback;
  } catch {
    return fallback;
  }
}

export const MAX_LIST = 1000;

export class QuarantineService {
  constructor(readonly deps: QuarantineDeps) {}

  async list(f: QuarantineFilter = {}): Promise<{ entries: QuarantineEntry[]; total: number }> {
    const base = this.filtered(f);
    const limit = Math.min(Math.max(f.limit ?? 50, 1), MAX_LIST);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('created_at', 'desc').orderBy('id').limit(limit).offset(Math.max(f.offset ?? 0, 0)).execute(),
      base.select(({ fn }) => fn.countAll<number>().as('n')).executeTakeFirst(),
    ]);
    return { entries: rows.map(toEntry), total: Number(count?.n ?? 0) };
  }

  private filtered(f: QuarantineFilter) {
    let q = this.deps.db.selectFrom('quarantine');
    const status = f.status ?? 'held';
    if (status !== 'any') q = q.where('status', '=', status);
    if (f.rcpt) q = q.where('rcpt', '=', f.rcpt.toLowerCase());
    if (f.rcptIn) q = f.rcptIn.length ? q.where('rcpt', 'in', f.rcptIn.map((a) => a.toLowerCase())) : q.where(({ lit }) => lit(false));
    if (f.domain) q = q.where('rcpt', 'like', `%@${f.domain.toLowerCase().replace(/[%_]/g, '')}`);
    if (f.sender) q = q.where('sender', '=', f.sender.toLowerCase());
    if (f.subject) q = q.where(({ fn, eb }) => eb(fn('lower', ['subject']), 'like', `%${f.subject!.toLowerCase().replace(/[%_]/g, '')}%`));
    if (f.since !== undefined) q = q.where('created_at', '>=', f.since);
    if (f.until !== undefined) q = q.where('created_at', '<', f.until);
    return q;
  }

  async get(id: string): Promise<QuarantineEntry | undefined> {
    const r = await this.deps.db.selectFrom('quarantine').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toEntry(r);
  }

  private async must(id: string): Promise<Row> {
    const r = await this.deps.db.selectFrom('quarantine').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw new QuarantineError('not_found', `no quarantined message ${id}`);
    return r;
  }

  /** The held message as it arrived. */
  async raw(id: string): Promise<Buffer> {
    const r = await this.must(id);
    if (r.status !== 'held') throw new QuarantineError('not_held', `${id} is no longer held (${r.status})`);
    return this.deps.blobs.get(r.blob);
  }

  /**
   * Delivers the held copy to its recipient only, through the relay, and marks the entry released. Of two
   * concurrent releases exactly one queues a copy; the other gets not_held.
   */
  async release(id: string, actor: Actor): Promise<{ queueId: string; entry: QuarantineEntry }> {
    const r = await this.must(id);
    if (r.status !== 'held') throw new QuarantineError('not_held', `${id} is no longer held (${r.status})`);
    const raw = await this.deps.blobs.get(r.blob);
    const msg = await this.deps.db.selectFrom('messages').select(['message_id', 'mail_from']).where('id', '=', r.msg_id).executeTakeFirst();
    const now = Date.now();
    const queueId = await enqueue(
      this.deps,
      {
        raw,
        mailFrom: msg?.mail_from ?? r.sender,
        rcpt: r.rcpt,
        subject: r.subject,
        messageId: msg?.message_id ?? null,
        score: Number(r.score),
        symbols: r.symbols,
        verdict: { released_from: r.msg_id, quarantine_id: r.id, by: actor },
        reason: `released from quarantine by ${actor}`,
      },
      async (trx) => {
        const u = await trx
          .updateTable('quarantine')
          .set({ status: 'released', acted_at: now, acted_by: actor })
          .where('id', '=', id)
          .where('status', '=', 'held')
          .executeTakeFirst();
        if (Number(u.numUpdatedRows) === 0) return false;
        // The original recipient row records the decision too: its trace says released, not held.
        await trx
          .updateTable('recipients')
          .set({ status: 'released', updated_at: now, last_error: `released by ${actor}` })
          .where('msg_id', '=', r.msg_id)
          .where('rcpt', '=', r.rcpt)
          .where('status', 'in', ['quarantined', 'pulled_back'])
          .execute();
        return true;
      },
    );
    if (!queueId) throw new QuarantineError('not_held', `${id} is no longer held`);
    this.deps.submit?.(queueId);
    this.deps.emit('quarantine.released', { msg_id: r.msg_id, data: { id, rcpt: r.rcpt, sender: r.sender, by: actor, queue_id: queueId } });
    return { queueId, entry: (await this.get(id))! };
  }

  /** Deletes the held copy; the entry stays (status deleted) until its expiry, for the record. */
  async delete(id: string, actor: Actor): Promise<QuarantineEntry> {
    const r = await this.must(id);
    if (r.status !== 'held') throw new QuarantineError('not_held', `${id} is no longer held (${r.status})`);
    const now = Date.now();
    const u = await this.deps.db
      .updateTable('quarantine')
      .set({ status: 'deleted', acted_at: now, acted_by: actor })
      .where('id', '=', id)
      .where('status', '=', 'held')
      .executeTakeFirst();
    if (Number(u.numUpdatedRows) === 0) throw new QuarantineError('not_held', `${id} is no longer held`);
    await this.deps.db
      .updateTable('recipients')
      .set({ status: 'deleted', updated_at: now, last_error: `deleted from quarantine by ${actor}` })
      .where('msg_id', '=', r.msg_id)
      .where('rcpt', '=', r.rcpt)
      .where('status', '=', 'quarantined')
      .execute();
    await this.dropBlobIfUnused(r.blob);
    this.deps.emit('quarantine.deleted', { msg_id: r.msg_id, data: { id, rcpt: r.rcpt, sender: r.sender, by: actor } });
    return (await this.get(id))!;
  }

  /**
   * Allows or blocks the entry's sender: for its recipient (user), the recipient's domain, or everyone (global,
   * for admins). The list lives in the policy table as a sender policy scoped with params.for, so the gateway
   * applies it at RCPT (a block) and at the decision (an allow), and `postern policies list` shows it.
   */
  async listSender(id: string, kind: 'allow' | 'block', scope: ListScope, actor: Actor): Promise<PolicyRow> {
    const r = await this.must(id);
    return this.listAddress(r.sender, r.rcpt, kind, scope, actor, r.msg_id);
  }

  async listAddress(sender: string, rcpt: string, kind: 'allow' | 'block', scope: ListScope, actor: Actor, msgId?: string): Promise<PolicyRow> {
    const s = sender.trim().toLowerCase();
    if (!s || !s.includes('@')) throw new QuarantineError('bad_request', `the null sender (bounces) cannot be ${kind === 'allow' ? 'allowed' : 'blocked'}`);
    const forScope = scope === 'user' ? rcpt.toLowerCase() : scope === 'domain' ? `*@${domainOf(rcpt)}` : undefined;
    const existing = (await listPolicies(this.deps.db, { target: s, limit: 10_000 })).find(
      (p) => p.target_kind === 'sender' && p.target === s && p.action === kind && p.params.for === forScope,
    );
    if (existing) return existing;
    const who = scope === 'user' ? rcpt : scope === 'domain' ? `the domain ${domainOf(rcpt)}` : 'everyone';
    let row: PolicyRow;
    try {
      row = await addPolicy(this.deps.db, {
        target_kind: 'sender',
        target: s,
        action: kind,
        params: forScope ? { for: forScope } : {},
        reason: `${kind === 'allow' ? 'allowed' : 'blocked'} for ${who} by ${actor} from the quarantine`,
        evidence: msgId ? { msg_id: msgId } : {},
        ttl_s: null,
        source: 'quarantine',
      });
    } catch (err) {
      throw new QuarantineError('bad_request', (err as Error).message);
    }
    this.deps.emit('quarantine.sender_listed', { msg_id: msgId ?? null, data: { sender: s, kind, scope, for: forScope ?? null, by: actor, policy: row.id } });
    return row;
  }

  /** Teaches the classifier the held message as spam or not spam (a message learned before moves class). */
  async report(id: string, cls: 'spam' | 'ham', actor: Actor): Promise<{ learned: boolean }> {
    const r = await this.must(id);
    const raw = await this.deps.blobs.get(r.blob).catch(() => {
      throw new QuarantineError('not_held', `${id}: the message is no longer stored (${r.status})`);
    });
    const item = await learnItem(raw, cls);
    const res = await learnBatch(this.deps.db, [item]);
    const learned = res.learned + res.moved > 0;
    this.deps.emit('quarantine.reported', { msg_id: r.msg_id, data: { id, rcpt: r.rcpt, class: cls, learned, by: actor } });
    return { learned };
  }

  /**
   * Deletes held copies past their expiry (status expired) and entries of any status past it, with blobs no
   * held entry still needs, and spent link tokens past theirs.
   */
  async purge(now = Date.now()): Promise<{ expired: number; removed: number; blobs: number }> {
    const { db } = this.deps;
    const due = await db.selectFrom('quarantine').select(['id', 'blob', 'status']).where('expires_at', '<=', now).limit(10_000).execute();
    if (!due.length) {
      await db.deleteFrom('quarantine_tokens').where('expires_at', '<=', now).execute();
      return { expired: 0, removed: 0, blobs: 0 };
    }
    const ids = due.map((r) => r.id);
    const expired = due.filter((r) => r.status === 'held').length;
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('quarantine').where('id', 'in', chunk).execute();
      });
    }
    let blobs = 0;
    for (const key of new Set(due.map((r) => r.blob))) if (await this.dropBlobIfUnused(key)) blobs++;
    await db.deleteFrom('quarantine_tokens').where('expires_at', '<=', now).execute();
    if (expired) this.deps.emit('quarantine.expired', { data: { held_expired: expired, entries_removed: ids.length, blobs_removed: blobs } });
    return { expired, removed: ids.length, blobs };
  }

  /** Removes a blob once no held entry refers to it (recipients of one message share one blob). */
  private async dropBlobIfUnused(key: string): Promise<boolean> {
    const still = await this.deps.db.selectFrom('quarantine').select('id').where('blob', '=', key).where('status', '=', 'held').limit(1).executeTakeFirst();
    if (still) return false;
    await this.deps.blobs.delete(key);
    return true;
  }

  /** Recipients with held entries created after `since` (for digests), with their counts. */
  async recipientsWithNew(since: (rcpt: string) => number, rcpt?: string): Promise<{ rcpt: string; count: number }[]> {
    let q = this.deps.db
      .selectFrom('quarantine')
      .select(['rcpt', ({ fn }) => fn.countAll<number>().as('n'), ({ fn }) => fn.max('created_at').as('latest')])
      .where('status', '=', 'held')
      .groupBy('rcpt');
    if (rcpt) q = q.where('rcpt', '=', rcpt.toLowerCase());
    const rows = await q.execute();
    return rows.filter((r) => Number(r.latest) > since(r.rcpt)).map((r) => ({ rcpt: r.rcpt, count: Number(r.n) }));
  }
}
