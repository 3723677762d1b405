// The trend analyzer: reads the data matrix's events in order, keeps per-source metadata current, runs the
// detectors and turns their findings into live policies. One analyzer leads at a time; it runs as a worker thread
// under `postern start` (trends/thread.ts) or as its own process (`postern start --role analyzer`).
import type Database from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Emit } from '../core/events.ts';
import type { DB } from '../store/schema.ts';
import type { Dialect } from '../store/db.ts';
import { upsertFinding } from '../policy/admin.ts';
import { PolicyTable, type PolicyFacts } from '../policy/live.ts';
import type { PolicyChange } from '../matrix/live.ts';
import { cidrContains } from '../policy/match.ts';
import { Windows } from './windows.ts';
import type { Detector, DetectorContext, Finding, MatrixEvent } from './detector.ts';
import { allDetectors, isEnabled } from './detectors/index.ts';
import { LiveSettings } from '../config/overrides.ts';
import { SourceStats, SOURCE_TYPES } from './source-stats.ts';
import { KnownLogins, KNOWN_LOGIN_TYPES } from './known-logins.ts';

const BATCH = 5_000;
/** A finding for a target already written this recently only refreshes nothing: the policy stands. */
const REFIRE_MS = 30_000;
/**
 * On PostgreSQL several nodes insert events at once, and neither ids nor times follow commit order: the analyzer
 * reads, in id order, only up to the first event younger than this, so that an event with a smaller id cannot still
 * be on its way. SQLite has one writer: no wait.
 */
const PG_SETTLE_MS = 1_000;
/**
 * How often the poll loop writes the metadata deltas and the cursor: folding half a second of steps writes each
 * repeating address, sender and HELO name once, not once per step, in one transaction short enough (tens of ms at
 * 50,000 events/s) that the gateway's event sink barely waits for the lock. Findings are written at once.
 */
const METADATA_MS = 500;
/** How often the detectors' settings changed in the center are read again (and at start). */
const SETTINGS_MS = 2_000;

export interface AnalyzerStats {
  cursor: number;
  events: number;
  findings: number;
  policies_created: number;
  /** Milliseconds from an event's time to its analysis, for the last batch (the worst of it). */
  lag_ms: number;
  /** Time of the newest event analysed (0 before the first): now minus this is how far behind the stream it is. */
  last_ts: number;
  /** Milliseconds spent in steps since start: events / busy_ms is what the analyzer can do, whatever it was given. */
  busy_ms: number;
  caught_up: boolean;
}

export interface AnalyzerOptions {
  db: Kysely<DB>;
  dialect: Dialect;
  config: Config;
  log: Logger;
  emit?: Emit;
  /** Told of every policy the analyzer writes, to fan the change out to the gateways. */
  onPolicy?: (change: PolicyChange) => void;
  /** Detectors to run besides the built-in ones (the outbreak detector plugs in here). */
  extra?: Detector[];
  /**
   * The store's SQLite handle (StoreDb.sqlite): events are then read and the metadata written through prepared
   * statements on it, synchronously, instead of through Kysely.
   */
  sqlite?: Database.Database;
  /** Milliseconds between metadata writes of the poll loop (METADATA_MS); 0 writes after every step. */
  metadataMs?: number;
}

/** The event types an analyzer with these detectors reads: theirs and those that change source_stats or mailbox_logins. */
export function analyzedTypes(detectors: readonly Detector[]): string[] {
  return [...new Set([...detectors.flatMap((d) => d.types), ...SOURCE_TYPES, ...KNOWN_LOGIN_TYPES])];
}

export class Analyzer {
  readonly stats: AnalyzerStats = { cursor: 0, events: 0, findings: 0, policies_created: 0, lag_ms: 0, last_ts: 0, busy_ms: 0, caught_up: false };
  private readonly windows = new Windows();
  private readonly detectors: Detector[];
  /** The detectors of each event type: a detector sees only the types it asked for. */
  private readonly byType = new Map<string, Detector[]>();
  private readonly types: string[];
  private readonly sources = new SourceStats();
  private readonly logins = new KnownLogins();
  private readonly allow: PolicyTable;
  private readonly fired = new Map<string, number>();
  private readonly ctx: DetectorContext;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private lastLagWarn = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private allowLoadedAt = -Infinity;
  /** The detectors' settings with what was changed in the center (config/overrides.ts), read every SETTINGS_MS. */
  private readonly settings: LiveSettings;
  private settingsLoadedAt = -Infinity;
  /** Findings not yet written, and whether the cursor and metadata of analysed events are not yet stored. */
  private readonly findings: Finding[] = [];
  private unsaved = false;
  /** When the metadata and cursor were last written (performance.now()). */
  private savedAt = performance.now();
  private readonly metadataMs: number;
  private readonly readSqlite?: (after: number, upTo: number) => MatrixEvent[];
  /** Following the stream (not replaying history at start-up). */
  private live = false;

  constructor(private readonly o: AnalyzerOptions) {
    this.settings = new LiveSettings(o.db, o.config, (err) => o.log.warn({ err: err.message }, 'detector settings'));
    this.detectors = [...allDetectors(o.config), ...(o.extra ?? [])];
    this.types = analyzedTypes(this.detectors);
    for (const d of this.detectors) for (const t of d.types) this.byType.set(t, [...(this.byType.get(t) ?? []), d]);
    this.allow = new PolicyTable(o.db);
    const trusted = o.config.gateway.trusted_networks;
    this.ctx = {
      windows: this.windows,
      config: o.config,
      trusted: (ip) => trusted.some((c) => cidrContains(c, ip)),
      alert: (detector, a) => {
        // Replayed history at start-up was alerted on before; only the live stream alerts.
        if (!this.live) return;
        const key = `alert\u0000${a.kind}\u0000${a.user ?? ''}\u0000${a.ip ?? ''}`;
        const now = Date.now();
        const at = this.fired.get(key);
        if (at !== undefined && now - at < REFIRE_MS) return;
        this.fired.set(key, now);
        this.o.emit?.('trends.alert', { ip: a.ip ?? null, data: { detector, ...a } });
      },
    };
    this.metadataMs = o.metadataMs ?? METADATA_MS;
    if (o.sqlite) this.readSqlite = sqliteReader(o.sqlite, this.types);
  }

  /**
   * Rebuilds the detectors' windows from the recent history already analysed (no findings, no metadata: both were
   * written before), then follows the stream from the stored cursor.
   */
  async start(pollMs = this.o.config.trends.poll_ms): Promise<void> {
    await this.reloadSettings();
    for (const d of this.detectors) await d.load?.(this.o.db, Date.now(), this.o.log);
    const state = await this.o.db.selectFrom('analyzer_state').selectAll().where('id', '=', 1).executeTakeFirst();
    const cursor = Number(state?.last_event_id ?? 0);
    const horizon = Math.max(0, ...this.detectors.map((d) => d.horizonMs(this.o.config)));
    const first = await this.o.db.selectFrom('events').select('id').where('ts', '>=', Date.now() - horizon).orderBy('id').limit(1).executeTakeFirst();
    if (first && Number(first.id) <= cursor) {
      let at = Number(first.id) - 1;
      while (at < cursor) {
        const batch = await this.read(at, cursor);
        if (!batch.length) break;
        for (const e of batch) for (const d of this.byType.get(e.type) ?? []) if (this.on(d)) d.observe(e, this.ctx);
        at = batch[batch.length - 1].id;
      }
    }
    this.stats.cursor = cursor;
    this.live = true;
    await this.allow.load();
    this.o.log.info({ cursor, replay_horizon_s: Math.round(horizon / 1000), detectors: this.detectors.filter((d) => this.on(d)).map((d) => d.name) }, 'trend analyzer started');
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.poll().catch((err) => this.o.log.error({ err }, 'trend analyzer step failed; trying again'));
      await this.running;
      if (!this.stopped) {
        this.timer = setTimeout(() => void loop(), pollMs);
      }
    };
    void loop();
  }

  /** Stops polling and writes everything still pending (findings, metadata, cursor) before it resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.serial(() => this.timed(() => this.save(true))).catch((err) => this.o.log.error({ err }, 'trend analyzer could not write its last metadata'));
  }

  /** Analyses everything available now and writes all of it; returns how many events it read. */
  drain(): Promise<number> {
    return this.serial(async () => {
      const n = await this.drainNow();
      await this.timed(() => this.save(true));
      return n;
    });
  }

  /** The poll loop's drain: metadata and cursor are written when METADATA_MS has passed since the last write. */
  private poll(): Promise<number> {
    return this.serial(() => this.drainNow());
  }

  /** Runs one drain, stop or step at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async drainNow(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.stepNow();
      total += n;
      if (n < BATCH) break;
    }
    this.stats.caught_up = true;
    // Nothing new, but what is pending may be due, or a failed write waiting to be tried again.
    if (!total && this.unsaved) await this.timed(() => this.save());
    return total;
  }

  /** Reads and analyses one batch of new events; the metadata is written only when due (see metadataMs). */
  step(): Promise<number> {
    return this.serial(() => this.stepNow());
  }

  private stepNow(): Promise<number> {
    return this.timed(() => this.readStep());
  }

  /** Runs fn, counting its time as busy. */
  private async timed<T>(fn: () => Promise<T>): Promise<T> {
    const began = performance.now();
    try {
      return await fn();
    } finally {
      this.stats.busy_ms += performance.now() - began;
    }
  }

  private async readStep(): Promise<number> {
    // Findings not written last time (the store was busy or down) are written first.
    if (this.findings.length) await this.save();
    if (performance.now() - this.settingsLoadedAt >= SETTINGS_MS) await this.reloadSettings();
    const batch = await this.read(this.stats.cursor);
    if (!batch.length) return 0;
    // The allow-list is read again at most every second, as the gateway does, not once per batch.
    if (performance.now() - this.allowLoadedAt >= 1_000) {
      await this.allow.load();
      this.allowLoadedAt = performance.now();
    }
    const t0 = Date.now();
    for (const e of batch) {
      this.sources.observe(e);
      this.logins.observe(e);
      for (const d of this.byType.get(e.type) ?? []) {
        if (!this.on(d)) continue;
        const f = d.observe(e, this.ctx);
        if (f?.length) this.findings.push(...f);
      }
    }
    const last = batch[batch.length - 1];
    this.stats.lag_ms = t0 - batch[0].ts;
    // The detectors have seen these events: the cursor moves now, so that a failed write below is retried from
    // what is kept in memory and the events are never counted twice.
    this.stats.cursor = last.id;
    this.stats.last_ts = last.ts;
    this.stats.events += batch.length;
    this.unsaved = true;
    await this.save();
    if (t0 - last.ts > 1_000 && t0 - this.lastLagWarn > 60_000) {
      this.lastLagWarn = t0;
      this.o.emit?.('trends.lag', { data: { lag_ms: t0 - last.ts, cursor: last.id } });
    }
    if (this.windows.size > 400_000) this.windows.sweep(t0);
    return batch.length;
  }

  /** The detector settings changed (announced on the policy bus): they are read again at the next poll. */
  settingsChanged(): void {
    this.settingsLoadedAt = -Infinity;
  }

  /** Whether a detector is switched on now: in the file, or as changed in the center since. */
  private on(d: Detector): boolean {
    return isEnabled(d.name, this.ctx.config);
  }

  /** Reads what was changed in the center; a store that cannot answer leaves the last settings in force. */
  private async reloadSettings(): Promise<void> {
    this.settingsLoadedAt = performance.now();
    try {
      if (!(await this.settings.load())) return;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not read the detector settings; keeping the last ones');
      return;
    }
    const before = this.ctx.config;
    this.ctx.config = this.settings.config;
    const switched = this.detectors.filter((d) => isEnabled(d.name, before) !== isEnabled(d.name, this.ctx.config));
    if (this.settings.overrides.length || before !== this.o.config) {
      this.o.log.info({ overrides: this.settings.overrides.map((o) => `${o.key}=${JSON.stringify(o.value)}`), switched: switched.map((d) => `${d.name}:${this.on(d) ? 'on' : 'off'}`) }, 'detector settings changed');
    }
  }

  /**
   * Writes the pending findings, then (when forced or due) the metadata deltas with the cursor in one transaction;
   * what fails stays pending for the next step. Events are analysed once, so a delta is never derived twice: the
   * cursor is stored only with the metadata of every event up to it.
   */
  private async save(force = false): Promise<void> {
    const now = Date.now();
    const due = force || this.logins.full || performance.now() - this.savedAt >= this.metadataMs;
    // What detectors keep in the store (the similarity index's rows) goes with the metadata, before the cursor, and
    // before any finding, so that a cluster policy never names rows not yet written. Each gateway counts its own
    // copies until its mirror has the rows, so the half second costs nothing in line; a write per step would
    // contend with the gateways for SQLite's lock.
    if (due || this.findings.length) {
      for (const d of this.detectors) {
        if (!d.flush) continue;
        const rows = await busyRetry(() => (d.flush as NonNullable<Detector['flush']>)(this.o.db, now));
        if (rows) this.o.onPolicy?.({ op: 'similarity', id: String(rows) });
      }
    }
    while (this.findings.length) {
      await this.write(this.findings[0], now);
      this.findings.shift();
    }
    if (!this.unsaved || !due) return;
    // Known login addresses first: a crash before the cursor is stored replays their logins, which only recounts.
    if (this.logins.size) await busyRetry(() => this.logins.flush(this.o.db));
    const cursor = { id: this.stats.cursor, now };
    if (this.o.sqlite) this.sources.flushSqlite(this.o.sqlite, cursor);
    else await this.sources.flush(this.o.db, this.o.dialect, cursor);
    this.unsaved = false;
    this.savedAt = performance.now();
  }

  private async read(after: number, upTo?: number): Promise<MatrixEvent[]> {
    if (this.readSqlite) return this.readSqlite(after, upTo ?? Number.MAX_SAFE_INTEGER);
    let q = this.o.db
      .selectFrom('events')
      .select(['id', 'ts', 'type', 'ip', 'conn_id', 'msg_id', 'data'])
      .where('id', '>', after)
      .where('type', 'in', this.types);
    if (upTo !== undefined) q = q.where('id', '<=', upTo);
    let rows = await q.orderBy('id').limit(BATCH).execute();
    if (this.o.dialect === 'postgres') {
      // Stop at the first event that is not old enough, in id order. Filtering on time instead would skip an
      // event with a smaller id and a later time (another node's sink inserted it first) for ever.
      const young = Date.now() - PG_SETTLE_MS;
      const cut = rows.findIndex((r) => Number(r.ts) >= young);
      if (cut >= 0) rows = rows.slice(0, cut);
    }
    return rows.map((r) => ({ id: Number(r.id), ts: Number(r.ts), type: r.type, ip: r.ip, conn_id: r.conn_id, msg_id: r.msg_id, data: parse(r.data) }));
  }

  private async write(f: Finding, now: number): Promise<void> {
    const p = f.policy;
    const key = `${p.target_kind}\u0000${p.target}\u0000${p.action}`;
    const at = this.fired.get(key);
    if (at !== undefined && now - at < REFIRE_MS) return;
    if (this.allowListed(p.target_kind, p.target)) {
      this.fired.set(key, now);
      this.o.log.info({ detector: f.detector, target: `${p.target_kind}:${p.target}` }, 'finding on an allow-listed source; no policy');
      return;
    }
    if (this.fired.size > 100_000) this.fired.clear();
    let res: Awaited<ReturnType<typeof upsertFinding>>;
    try {
      res = await busyRetry(() => upsertFinding(this.o.db, p, now));
    } catch (err) {
      // A finding the policy rules refuse (a malformed target from odd input) is dropped, not retried for ever.
      if ((err as Error).name === 'PolicyInputError') {
        this.o.log.warn({ err: (err as Error).message, detector: f.detector, target: `${p.target_kind}:${p.target}` }, 'finding dropped: not a valid policy');
        return;
      }
      throw err;
    }
    const { row, created } = res;
    this.fired.set(key, now);
    this.stats.findings++;
    if (created) this.stats.policies_created++;
    if (created && p.target_kind === 'cluster') {
      this.o.emit?.('outbreak.declared', { data: { cluster: Number(p.target), policy: row.id, action: p.action, by: f.detector, reason: p.reason, evidence: p.evidence } });
    }
    this.o.onPolicy?.({ op: 'set', id: row.id });
    this.o.emit?.('trends.finding', {
      ip: p.target_kind === 'ip' ? p.target : null,
      data: { detector: f.detector, policy: row.id, created, target_kind: p.target_kind, target: p.target, action: p.action, params: p.params, reason: p.reason, expires_at: row.expires_at, evidence: p.evidence },
    });
  }

  private allowListed(kind: string, target: string): boolean {
    const facts: PolicyFacts =
      kind === 'ip' ? { ip: target }
      : kind === 'cidr' ? { ip: target.split('/')[0] }
      : kind === 'domain' ? { sender: `x@${target}` }
      : kind === 'recipient' ? { recipient: target }
      : kind === 'sender' ? { sender: target }
      : kind === 'helo' ? { helo: target }
      : kind === 'cluster' ? { clusters: [Number(target)] }
      : {};
    return this.allow.match(facts).some((p) => p.action === 'allow');
  }
}

/**
 * Runs a SQLite transaction that reads before it writes again while it fails with SQLITE_BUSY: such a transaction
 * fails at once, without the busy timeout, when another connection (the gateway's event sink) committed after its
 * read. It was rolled back, so running it again is safe.
 */
async function busyRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!String((err as { code?: string }).code).startsWith('SQLITE_BUSY') || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** read() on SQLite: one prepared statement, rows as arrays (no column-name objects to build). */
function sqliteReader(sqlite: Database.Database, types: string[]): (after: number, upTo: number) => MatrixEvent[] {
  const st = sqlite
    .prepare(`select id, ts, type, ip, conn_id, msg_id, data from events where id > ? and id <= ? and type in (${types.map(() => '?').join(', ')}) order by id limit ${BATCH}`)
    .raw(true);
  return (after, upTo) =>
    (st.all(after, upTo, ...types) as [number, number, string, string | null, string | null, string | null, string][]).map((r) => ({
      id: Number(r[0]), ts: Number(r[1]), type: r[2], ip: r[3], conn_id: r[4], msg_id: r[5], data: parse(r[6]),
    }));
}

function parse(s: string): Record<string, unknown> {
  try {
    const v = JSON.parse(s) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
