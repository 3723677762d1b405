// Per-source metadata of the data matrix (table source_stats): for each address, network, HELO name, sender domain
// and sender, what it has sent and what became of it. The analyzer folds events into deltas here and writes them,
// with its cursor, in one transaction.
import type Database from 'better-sqlite3';
import { CompiledQuery, type Kysely } from 'kysely';
import type { Dialect } from '../store/db.ts';
import type { DB, SourceStatsTable } from '../store/schema.ts';
import type { MatrixEvent } from './detector.ts';
import { networkOf, plainIp, str } from './detector.ts';

type Counter = 'connections' | 'messages' | 'recipients' | 'unknown_recipients' | 'refused' | 'quarantined' | 'delivered' | 'protocol_errors';
type Counts = Partial<Record<Counter, number>>;

interface Delta {
  kind: string;
  key: string;
  first: number;
  last: number;
  counts: Counts;
  scoreSum: number;
  scoreN: number;
  hist: Record<string, number>;
  actions: Record<string, number>;
}

/** Types whose events change source_stats. */
export const SOURCE_TYPES = [
  'smtp.connect',
  'smtp.helo',
  'smtp.rcpt.accepted',
  'smtp.rcpt.rejected',
  'smtp.protocol_error',
  'message.accepted',
  'smtp.data.rejected',
  'relay.delivered',
] as const;

export function scoreBucket(score: number): string {
  if (score < 0) return '<0';
  if (score < 2) return '0-2';
  if (score < 5) return '2-5';
  if (score < 8) return '5-8';
  if (score < 15) return '8-15';
  return '>=15';
}

const MEMO = 50_000;

const COLUMNS = [
  'kind', 'key', 'first_seen', 'last_seen', 'connections', 'messages', 'recipients', 'unknown_recipients', 'refused', 'quarantined',
  'delivered', 'protocol_errors', 'score_sum', 'score_n', 'score_hist', 'actions',
] as const satisfies readonly (keyof SourceStatsTable)[];
/**
 * Rows per statement when flushing, largest first (500 × 16 parameters stays well under SQLite's and PostgreSQL's
 * limits). A few fixed sizes keep the SQL text to a handful of strings, each built and prepared once: building and
 * compiling a statement of thousands of parameters for every batch cost more than running it.
 */
const SIZES = [500, 100, 20, 5, 1];

/** The analyzer's position, written in the same transaction as the metadata of the events up to it. */
export interface Cursor {
  id: number;
  now: number;
}

const CURSOR_SQL = {
  sqlite: 'insert into "analyzer_state" ("id", "last_event_id", "updated_at") values (1, ?, ?) on conflict ("id") do update set "last_event_id" = excluded."last_event_id", "updated_at" = excluded."updated_at"',
  postgres: 'insert into "analyzer_state" ("id", "last_event_id", "updated_at") values (1, $1, $2) on conflict ("id") do update set "last_event_id" = excluded."last_event_id", "updated_at" = excluded."updated_at"',
};

const cache: Partial<Record<Dialect, { select(n: number): string; upsert(n: number): string }>> = {};
/** The select and the upsert of n rows, as SQL text for the dialect (built on first use). */
const statements = (dialect: Dialect) => (cache[dialect] ??= build(dialect));

function build(dialect: Dialect): { select(n: number): string; upsert(n: number): string } {
  const at = (i: number) => (dialect === 'postgres' ? `$${i}` : '?');
  const q = (c: string) => `"${c}"`;
  const selects = new Map<number, string>();
  const upserts = new Map<number, string>();
  const update = COLUMNS.slice(2).map((c) => `${q(c)} = excluded.${q(c)}`).join(', ');
  return {
    select(n) {
      let s = selects.get(n);
      if (!s) {
        const keys = Array.from({ length: n }, (_, i) => at(i + 2)).join(', ');
        selects.set(n, (s = `select * from "source_stats" where "kind" = ${at(1)} and "key" in (${keys})`));
      }
      return s;
    },
    upsert(n) {
      let s = upserts.get(n);
      if (!s) {
        const rows = Array.from({ length: n }, (_, r) => `(${COLUMNS.map((_, c) => at(r * COLUMNS.length + c + 1)).join(', ')})`);
        s = `insert into "source_stats" (${COLUMNS.map(q).join(', ')}) values ${rows.join(', ')} on conflict ("kind", "key") do update set ${update}`;
        upserts.set(n, s);
      }
      return s;
    },
  };
}

const CONNECTION = { connections: 1 };
const PROTOCOL_ERROR = { protocol_errors: 1 };
const RECIPIENT = { recipients: 1 };
const REFUSED = { recipients: 1, refused: 1 };
const UNKNOWN = { recipients: 1, refused: 1, unknown_recipients: 1 };
const DATA_REFUSED = { messages: 1, refused: 1 };
const REJECT = { reject: 1 };

export class SourceStats {
  /** Kind → key → delta: two lookups are cheaper than building a joined key for every event and key. */
  private deltas = new Map<string, Map<string, Delta>>();
  private size = 0;
  /** Connection → HELO name and message → its source, so later events can be charged to them (bounded). */
  private readonly helos = new Memo<string>();
  private readonly msgs = new Memo<{ ip: string | null; from: string; helo?: string }>();

  get pending(): number {
    return this.size;
  }

  observe(e: MatrixEvent): void {
    const ip = e.ip ? plainIp(e.ip) : undefined;
    const helo = e.conn_id ? this.helos.get(e.conn_id) : undefined;
    const from = str(e.data.from);
    switch (e.type) {
      case 'smtp.connect':
        this.charge(e.ts, ip, undefined, undefined, CONNECTION);
        break;
      case 'smtp.helo': {
        const name = str(e.data.helo)?.toLowerCase();
        if (!name) break;
        if (e.conn_id) this.helos.set(e.conn_id, name);
        this.bump(e.ts, 'helo', name, CONNECTION);
        break;
      }
      case 'smtp.protocol_error':
        this.charge(e.ts, ip, undefined, undefined, PROTOCOL_ERROR);
        break;
      case 'smtp.rcpt.accepted':
        this.charge(e.ts, ip, from, helo, RECIPIENT);
        break;
      case 'smtp.rcpt.rejected':
        this.charge(e.ts, ip, from, helo, e.data.reason === 'unknown_recipient' ? UNKNOWN : REFUSED);
        break;
      case 'smtp.data.rejected':
        this.charge(e.ts, ip, from, helo, DATA_REFUSED, undefined, REJECT);
        break;
      case 'message.accepted': {
        const rcpts = Array.isArray(e.data.recipients) ? (e.data.recipients as { action?: string }[]) : [];
        const actions: Record<string, number> = {};
        for (const r of rcpts) actions[String(r.action)] = (actions[String(r.action)] ?? 0) + 1;
        const score = typeof e.data.score === 'number' ? e.data.score : undefined;
        this.charge(e.ts, ip, from, helo, { messages: 1, quarantined: actions.quarantine ?? 0 }, score, actions);
        if (e.msg_id) this.msgs.set(e.msg_id, { ip: ip ?? null, from: from ?? '', helo });
        break;
      }
      case 'relay.delivered': {
        const m = e.msg_id ? this.msgs.get(e.msg_id) : undefined;
        const n = Array.isArray(e.data.rcpts) ? e.data.rcpts.length : 0;
        if (!m || !n) break;
        this.charge(e.ts, m.ip ?? undefined, m.from, m.helo, { delivered: n });
        break;
      }
    }
  }

  /**
   * Writes the deltas gathered so far (merged into existing rows) and clears them; with a cursor, writes it in the
   * same transaction, even when there are no deltas.
   */
  async flush(db: Kysely<DB>, dialect: Dialect, cursor?: Cursor): Promise<number> {
    if (!this.size && !cursor) return 0;
    const byKind = this.deltas;
    const total = this.size;
    this.deltas = new Map();
    this.size = 0;
    try {
      const sql = statements(dialect);
      const run = <R>(conn: Kysely<DB>, text: string, params: unknown[] = []) => conn.executeQuery<R>(CompiledQuery.raw(text, params));
      // Read and merge first, then write in one short transaction. The analyzer is the only writer of source_stats,
      // so nothing changes these rows in between; and the gateway's event sink, a synchronous writer on SQLite, then
      // waits for the lock only while the rows are written, not while they are read and merged.
      const writes: { n: number; values: unknown[] }[] = [];
      for (const [kind, of] of byKind) {
        const deltas = [...of.values()];
        for (let i = 0; i < deltas.length; ) {
          const n = SIZES.find((s) => s <= deltas.length - i)!;
          const chunk = deltas.slice(i, (i += n));
          const found = await run<SourceStatsTable>(db, sql.select(n), [kind, ...chunk.map((d) => d.key)]);
          const existing = new Map(found.rows.map((r) => [r.key, r]));
          const values: unknown[] = [];
          for (const d of chunk) {
            const r = merge(existing.get(d.key), d);
            for (const c of COLUMNS) values.push(r[c]);
          }
          writes.push({ n, values });
        }
      }
      await db.connection().execute(async (conn) => {
        // SQLite: take the write lock at once, so that a busy store is waited for (busy_timeout) rather than failing.
        await run(conn, dialect === 'sqlite' ? 'begin immediate' : 'begin');
        try {
          for (const w of writes) await run(conn, sql.upsert(w.n), w.values);
          if (cursor) await run(conn, CURSOR_SQL[dialect], [cursor.id, cursor.now]);
          await run(conn, 'commit');
        } catch (err) {
          await run(conn, 'rollback').catch(() => undefined);
          throw err;
        }
      });
    } catch (err) {
      // Nothing was written (the transaction rolled back): keep the deltas for the next flush. No event is observed
      // while a flush runs (the analyzer's steps run one at a time), so the map is still empty here.
      this.deltas = byKind;
      this.size = total;
      throw err;
    }
    return total;
  }

  /**
   * flush() for SQLite through its own handle: one synchronous `begin immediate` transaction of upserts that merge
   * in SQL, so nothing is read first and no round trip through Kysely is made. The analyzer is the only writer of
   * source_stats, so the merge is the same as flush()'s.
   */
  flushSqlite(sqlite: Database.Database, cursor?: Cursor): number {
    if (!this.size && !cursor) return 0;
    const w = sqliteWriter(sqlite);
    const total = this.size;
    w.write(this.deltas, cursor);
    this.deltas = new Map();
    this.size = 0;
    return total;
  }

  /** Charges an event to its address and network, its sender and sender domain, and its HELO name. */
  private charge(ts: number, ip: string | undefined, from: string | undefined, helo: string | undefined, counts: Counts, score?: number, actions?: Record<string, number>): void {
    const bucket = score === undefined ? undefined : scoreBucket(score);
    if (ip) {
      this.bump(ts, 'ip', ip, counts, score, bucket, actions);
      this.bump(ts, 'net', networkOf(ip), counts, score, bucket, actions);
    }
    if (from) {
      const at = from.lastIndexOf('@');
      const lower = from.toLowerCase();
      this.bump(ts, 'sender', lower, counts, score, bucket, actions);
      if (at > 0) this.bump(ts, 'sender_domain', lower.slice(at + 1), counts, score, bucket, actions);
    }
    if (helo) this.bump(ts, 'helo', helo, counts, score, bucket, actions);
  }

  private bump(ts: number, kind: string, key: string, counts: Counts, score?: number, bucket?: string, actions?: Record<string, number>): void {
    let of = this.deltas.get(kind);
    if (!of) this.deltas.set(kind, (of = new Map()));
    let d = of.get(key);
    if (!d) {
      d = { kind, key, first: ts, last: ts, counts: {}, scoreSum: 0, scoreN: 0, hist: {}, actions: {} };
      of.set(key, d);
      this.size++;
    } else {
      if (ts < d.first) d.first = ts;
      if (ts > d.last) d.last = ts;
    }
    for (const c in counts) d.counts[c as Counter] = (d.counts[c as Counter] ?? 0) + counts[c as Counter]!;
    if (score !== undefined) {
      d.scoreSum += score;
      d.scoreN++;
      d.hist[bucket!] = (d.hist[bucket!] ?? 0) + 1;
    }
    if (actions) for (const a in actions) d.actions[a] = (d.actions[a] ?? 0) + actions[a];
  }
}

interface SqliteWriter {
  write(deltas: Map<string, Map<string, Delta>>, cursor?: Cursor): void;
}

const writers = new WeakMap<Database.Database, SqliteWriter>();

/** The prepared statements and the transaction of flushSqlite, once per handle. */
function sqliteWriter(sqlite: Database.Database): SqliteWriter {
  let w = writers.get(sqlite);
  if (w) return w;
  // Sums the counts of two JSON objects exactly as addJson does, so a row merged in SQL is byte for byte the same.
  sqlite.function('postern_add_json', { deterministic: true }, (a: unknown, b: unknown) => addJson(a as string, JSON.parse(b as string) as Record<string, number>));
  const q = (c: string) => `"${c}"`;
  const merge = COLUMNS.slice(2).map((c) => {
    const cur = `"source_stats".${q(c)}`;
    const next = `excluded.${q(c)}`;
    const v = c === 'first_seen' ? `min(${cur}, ${next})` : c === 'last_seen' ? `max(${cur}, ${next})` : c === 'score_hist' || c === 'actions' ? `postern_add_json(${cur}, ${next})` : `${cur} + ${next}`;
    return `${q(c)} = ${v}`;
  });
  const statements = new Map<number, Database.Statement>();
  const upsert = (n: number) => {
    let st = statements.get(n);
    if (!st) {
      const rows = Array.from({ length: n }, () => `(${COLUMNS.map(() => '?').join(', ')})`);
      st = sqlite.prepare(`insert into "source_stats" (${COLUMNS.map(q).join(', ')}) values ${rows.join(', ')} on conflict ("kind", "key") do update set ${merge.join(', ')}`);
      statements.set(n, st);
    }
    return st;
  };
  const cursorSt = sqlite.prepare(CURSOR_SQL.sqlite);
  const tx = sqlite.transaction((writes: { n: number; values: unknown[] }[], cursor?: Cursor) => {
    for (const x of writes) upsert(x.n).run(x.values);
    if (cursor) cursorSt.run(cursor.id, cursor.now);
  });
  w = {
    write(byKind, cursor) {
      // The parameters are built before the transaction, which holds the write lock (the gateway's event sink waits
      // for it) only while SQLite works.
      const writes: { n: number; values: unknown[] }[] = [];
      for (const of of byKind.values()) {
        const deltas = [...of.values()];
        for (let i = 0; i < deltas.length; ) {
          const n = SIZES.find((s) => s <= deltas.length - i)!;
          const values: unknown[] = [];
          for (const d of deltas.slice(i, (i += n))) values.push(...row(d));
          writes.push({ n, values });
        }
      }
      // begin immediate: take the write lock at once, so that a busy store is waited for (busy_timeout), not failed.
      tx.immediate(writes, cursor);
    },
  };
  writers.set(sqlite, w);
  return w;
}

/** A delta as the row it is when nothing is stored yet, in COLUMNS order. */
function row(d: Delta): unknown[] {
  const c = d.counts;
  return [
    d.kind, d.key, d.first, d.last, c.connections ?? 0, c.messages ?? 0, c.recipients ?? 0, c.unknown_recipients ?? 0, c.refused ?? 0,
    c.quarantined ?? 0, c.delivered ?? 0, c.protocol_errors ?? 0, d.scoreSum, d.scoreN, JSON.stringify(d.hist), JSON.stringify(d.actions),
  ];
}

/**
 * A map of at most MEMO keys that forgets the oldest inserted first. The order is kept in an array of its own:
 * taking the first key of a Map from which the first keys were deleted walks over their holes until V8 rehashes
 * it, which at 50,000 keys and a delete per event cost more than all the rest of the metadata.
 */
class Memo<V> {
  private readonly map = new Map<string, V>();
  private order: string[] = [];
  private head = 0;

  get(k: string): V | undefined {
    return this.map.get(k);
  }

  set(k: string, v: V): void {
    if (this.map.size >= MEMO) {
      this.map.delete(this.order[this.head++]);
      if (this.head >= MEMO) {
        this.order = this.order.slice(this.head);
        this.head = 0;
      }
    }
    // A key set again keeps its place, as in a Map.
    if (!this.map.has(k)) this.order.push(k);
    this.map.set(k, v);
  }
}

function addJson(a: string | undefined, b: Record<string, number>): string {
  const out: Record<string, number> = a ? (JSON.parse(a) as Record<string, number>) : {};
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return JSON.stringify(out);
}

function merge(r: SourceStatsTable | undefined, d: Delta): SourceStatsTable {
  const c = (k: Counter) => Number(r?.[k] ?? 0) + (d.counts[k] ?? 0);
  return {
    kind: d.kind,
    key: d.key,
    first_seen: r ? Math.min(Number(r.first_seen), d.first) : d.first,
    last_seen: r ? Math.max(Number(r.last_seen), d.last) : d.last,
    connections: c('connections'),
    messages: c('messages'),
    recipients: c('recipients'),
    unknown_recipients: c('unknown_recipients'),
    refused: c('refused'),
    quarantined: c('quarantined'),
    delivered: c('delivered'),
    protocol_errors: c('protocol_errors'),
    score_sum: Number(r?.score_sum ?? 0) + d.scoreSum,
    score_n: Number(r?.score_n ?? 0) + d.scoreN,
    score_hist: addJson(r?.score_hist, d.hist),
    actions: addJson(r?.actions, d.actions),
  };
}
