// Store upkeep: events and finished messages older than store.event_retention_days are deleted, in small batches so
// that no single statement holds the writer for long (SQLite has one writer; the gateway's commits wait behind it).
// Runs in the process that owns the store's writes: the single process, or a cluster's primary.
import type { Kysely } from 'kysely';
import type { DB } from './schema.ts';
import type { Logger } from '../core/log.ts';

const BATCH = 2000;
const DAY_MS = 86_400_000;

export interface PurgeResult {
  events: number;
  messages: number;
  recipients: number;
}

export class Upkeep {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PurgeResult> | null = null;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly opts: { retentionDays: number; log: Logger; onPurged?: (r: PurgeResult & { cutoff: number }) => void },
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
    const cutoff = now - this.opts.retentionDays * DAY_MS;
    const r: PurgeResult = { events: 0, messages: 0, recipients: 0 };
    for (;;) {
      const ids = await this.db.selectFrom('events').select('id').where('ts', '<', cutoff).orderBy('id').limit(BATCH).execute();
      if (!ids.length) break;
      const res = await this.db.deleteFrom('events').where('id', 'in', ids.map((x) => x.id)).executeTakeFirst();
      r.events += Number(res.numDeletedRows);
      if (ids.length < BATCH) break;
      await yieldToOthers();
    }
    // A finished message (every recipient delivered, bounced or expired) whose trace has aged out. Messages with a
    // quarantined recipient stay: their quarantine record refers to them and has its own retention.
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
    if (r.events || r.messages) this.opts.onPurged?.({ ...r, cutoff });
    return r;
  }
}

/** Lets waiting commits and sessions run between batches. */
function yieldToOthers(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 10));
}
