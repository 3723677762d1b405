// Store upkeep: events past their retention (store.event_retention_by_type, else event_retention_days) are counted
// into hourly roll-ups and deleted; finished messages past event_retention_days, roll-ups past rollup_retention_days
// and long-expired policies are deleted. All in small batches, so that no single statement holds the writer for long
// (SQLite has one writer; the gateway's commits wait behind it). Runs in the process that owns the store's writes:
// the single process, or a cluster's primary.
import type { Kysely } from 'kysely';
import type { DB } from './schema.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { EVENT_TYPES } from '../core/events.ts';

const BATCH = 2000;
/** Rows of any type one select may walk past to find a batch of its class. */
const SCAN = 20_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** An expired policy stays this long, so that `postern policy` and the center can still explain past decisions. */
const EXPIRED_POLICY_KEEP_DAYS = 30;
/** A run starts this far before the previous run's cutoff: events stamped earlier but written later (a worker's
 * batch in flight, a clock stepped back) are still found. Older stragglers wait for the next start of the process. */
const SWEEP_OVERLAP_MS = HOUR_MS;

export type RetentionSettings = Pick<Config['store'], 'event_retention_days' | 'event_retention_by_type' | 'rollup_retention_days'>;

/** The events kept for one number of days: a configured type or prefix, or '*' for every other type. */
export interface RetentionClass {
  match: string;
  days: number;
  /** The catalogue's types whose longest matching key is `match`; null for '*' (every type not claimed). */
  types: string[] | null;
}

export interface PurgeResult {
  /** Events deleted, all classes. */
  events: number;
  classes: { match: string; days: number; events: number }[];
  /** Distinct (hour, type) rows of event_rollups created or added to. */
  rolledUp: number;
  rollupsDeleted: number;
  policies: number;
  messages: number;
  recipients: number;
}

/**
 * Splits the catalogue into retention classes by longest matching prefix ("smtp" covers smtp.*). A type outside
 * the catalogue (an older version's) falls to '*'. A configured key that matches no type is kept with no types.
 */
export function retentionClasses(s: RetentionSettings): RetentionClass[] {
  const keys = Object.keys(s.event_retention_by_type).sort((a, b) => b.length - a.length);
  const byKey = new Map(keys.map((k) => [k, [] as string[]]));
  for (const t of Object.keys(EVENT_TYPES)) {
    const k = keys.find((k) => t === k || t.startsWith(`${k}.`));
    if (k) byKey.get(k)!.push(t);
  }
  const classes: RetentionClass[] = [...byKey].map(([match, types]) => ({ match, days: s.event_retention_by_type[match]!, types }));
  return [...classes, { match: '*', days: s.event_retention_days, types: null }];
}

export class Upkeep {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PurgeResult> | null = null;
  /** Per class, the cutoff of its last complete run: every event of it older than that is gone. */
  private readonly swept = new Map<string, number>();

  constructor(
    private readonly db: Kysely<DB>,
    private readonly opts: { store: RetentionSettings; log: Logger; onPurged?: (r: PurgeResult & { cutoff: number }) => void },
  ) {}

  /** Purges once soon after start, then every `everyMs`. */
  start(everyMs = 3_600_000, firstAfterMs = 60_000): void {
    const tick = () => {
      this.purge().catch((err) => this.opts.log.error({ err }, 'store upkeep failed; trying again at the next run'));
    };
    this.timer = setTimeout(function again(this: Upkeep) {
      tick();
      this.timer = setTimeout(again.bind(this), everyMs);
      this.timer.unref();
    }.bind(this), firstAfterMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** Deletes what is older than the retention, as of `now`; one run at a time. */
  purge(now = Date.now()): Promise<PurgeResult> {
    this.running ??= this.run(now).finally(() => (this.running = null));
    return this.running;
  }

  private async run(now: number): Promise<PurgeResult> {
    const cutoff = now - this.opts.store.event_retention_days * DAY_MS;
    const r: PurgeResult = { events: 0, classes: [], rolledUp: 0, rollupsDeleted: 0, policies: 0, messages: 0, recipients: 0 };
    const classes = retentionClasses(this.opts.store);
    const claimed = classes.flatMap((c) => c.types ?? []);
    const hours = new Set<string>();
    for (const c of classes) {
      const n = c.types?.length === 0 ? 0 : await this.rollUpAndDelete(c.match, c.types ?? claimed, c.types === null, now - c.days * DAY_MS, hours);
      r.classes.push({ match: c.match, days: c.days, events: n });
      r.events += n;
    }
    r.rolledUp = hours.size;
    // Each run removes about one hour's rows (one per type), so one statement is short enough.
    const old = await this.db.deleteFrom('event_rollups').where('hour', '<', now - this.opts.store.rollup_retention_days * DAY_MS).executeTakeFirst();
    r.rollupsDeleted = Number(old.numDeletedRows);
    await this.purgeMessages(cutoff, r);
    r.policies = await this.purgePolicies(now - EXPIRED_POLICY_KEEP_DAYS * DAY_MS);
    if (r.events || r.messages || r.rollupsDeleted || r.policies) this.opts.onPurged?.({ ...r, cutoff });
    return r;
  }

  /**
   * Counts the events of `types` (or, with `except`, of every other type) older than `before` into event_rollups,
   * then deletes them, a batch per transaction: a crash between batches neither loses nor doubles a count.
   */
  private async rollUpAndDelete(match: string, types: string[], except: boolean, before: number, touched: Set<string>): Promise<number> {
    let deleted = 0;
    // The table holds other classes' rows older than this class's cutoff (types kept longer). Each statement looks
    // at a window of at most SCAN rows of any type, and a run starts where the previous one stopped, so those rows
    // are neither scanned in one long statement nor again every hour.
    const swept = this.swept.get(match);
    let from: number | null = swept !== undefined ? swept - SWEEP_OVERLAP_MS : await this.firstEvent(Number.MIN_SAFE_INTEGER, before);
    while (from !== null && from < before) {
      const end = await this.windowEnd(from, before);
      let q = this.db.selectFrom('events').select(['id', 'ts', 'type', 'ip']).where('ts', '>=', from).where('ts', '<', end);
      if (types.length) q = q.where('type', except ? 'not in' : 'in', types);
      let rows = await q.orderBy('ts').limit(BATCH).execute();
      const full = rows.length === BATCH;
      // A full batch ending inside an hour leaves that hour whole to the next batch, so that its distinct addresses
      // are counted exactly (only an hour with more than BATCH events of the class is split and its ips approximated).
      const lastHour = full ? hourOf(rows[rows.length - 1]!.ts) : 0;
      if (full && hourOf(rows[0]!.ts) !== lastHour) rows = rows.filter((e) => hourOf(e.ts) !== lastHour);
      if (rows.length) deleted += await this.rollUp(rows, touched);
      // After a full batch the rest of the window starts at its last ts (the rows up to there are gone).
      from = full ? rows[rows.length - 1]!.ts : await this.firstEvent(end, before);
      await (rows.length ? yieldToOthers() : new Promise((r) => setImmediate(r)));
    }
    this.swept.set(match, before);
    return deleted;
  }

  /** Adds one batch to event_rollups and deletes it, in one transaction. */
  private async rollUp(rows: { id: number; ts: number; type: string; ip: string | null }[], touched: Set<string>): Promise<number> {
    const groups = new Map<string, { hour: number; type: string; count: number; ips: Set<string> }>();
    for (const e of rows) {
      const hour = hourOf(e.ts);
      const key = `${hour}|${e.type}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { hour, type: e.type, count: 0, ips: new Set() }));
      g.count++;
      if (e.ip !== null) g.ips.add(e.ip);
      touched.add(key);
    }
    const values = [...groups.values()].map((g) => ({ hour: g.hour, type: g.type, count: g.count, ips: g.ips.size }));
    return this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('event_rollups')
        .values(values)
        .onConflict((oc) =>
          oc.columns(['hour', 'type']).doUpdateSet((eb) => ({
            count: eb('event_rollups.count', '+', eb.ref('excluded.count')),
            // Distinct addresses cannot be added up without keeping them; the larger of the two counts is a lower
            // bound of the true number, exact when one batch saw the whole hour (fewer than BATCH events of it).
            ips: eb.case().when('excluded.ips', '>', eb.ref('event_rollups.ips')).then(eb.ref('excluded.ips')).else(eb.ref('event_rollups.ips')).end(),
          })),
        )
        .execute();
      const res = await trx.deleteFrom('events').where('id', 'in', rows.map((e) => e.id)).executeTakeFirst();
      return Number(res.numDeletedRows);
    });
  }

  /** The end of a window from `from`: an hour boundary past which at most SCAN events lie, or `before`. */
  private async windowEnd(from: number, before: number): Promise<number> {
    const ahead = await this.db.selectFrom('events').select('ts').where('ts', '>=', from).orderBy('ts').limit(1).offset(SCAN).executeTakeFirst();
    return Math.min(before, ahead ? Math.max(hourOf(from) + HOUR_MS, hourOf(ahead.ts)) : before);
  }

  /** The time of the first event in [from, before), of any type, or null. */
  private async firstEvent(from: number, before: number): Promise<number | null> {
    const r = await this.db.selectFrom('events').select((eb) => eb.fn.min('ts').as('ts')).where('ts', '>=', from).where('ts', '<', before).executeTakeFirst();
    return r?.ts ?? null;
  }

  // A finished message (every recipient delivered, bounced or expired) whose trace has aged out. Messages with a
  // quarantined recipient stay: their quarantine record refers to them and has its own retention.
  private async purgeMessages(cutoff: number, r: PurgeResult): Promise<void> {
    for (;;) {
      const ids = (
        await this.db
          .selectFrom('messages')
          .select('id')
          .where('status', '=', 'done')
          .where('received_at', '<', cutoff)
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('quarantine').select('quarantine.id').whereRef('quarantine.msg_id', '=', 'messages.id'))))
          .limit(BATCH)
          .execute()
      ).map((x) => x.id);
      if (!ids.length) break;
      await this.db.transaction().execute(async (trx) => {
        const rc = await trx.deleteFrom('recipients').where('msg_id', 'in', ids).executeTakeFirst();
        const mc = await trx.deleteFrom('messages').where('id', 'in', ids).executeTakeFirst();
        r.recipients += Number(rc.numDeletedRows);
        r.messages += Number(mc.numDeletedRows);
      });
      if (ids.length < BATCH) break;
      await yieldToOthers();
    }
  }

  /** Policies that expired before `before`; pinned ones are the administrator's and never go. */
  private async purgePolicies(before: number): Promise<number> {
    let n = 0;
    for (;;) {
      const ids = (await this.db.selectFrom('policies').select('id').where('pinned', '=', 0).where('expires_at', '<', before).limit(BATCH).execute()).map((x) => x.id);
      if (!ids.length) break;
      n += Number((await this.db.deleteFrom('policies').where('id', 'in', ids).executeTakeFirst()).numDeletedRows);
      if (ids.length < BATCH) break;
      await yieldToOthers();
    }
    return n;
  }
}

const hourOf = (ts: number): number => Math.floor(ts / HOUR_MS) * HOUR_MS;

/** Lets waiting commits and sessions run between batches. */
function yieldToOthers(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 10));
}
