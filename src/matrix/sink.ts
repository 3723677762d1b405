// Event ingest: emit() buffers typed events and writes them to the store in batches, off the SMTP hot path.
import type { Kysely } from 'kysely';
import type { Logger } from '../core/log.ts';
import { EVENT_TYPES, type Emit, type EventType, type PosternEvent } from '../core/events.ts';
import type { DB } from '../store/schema.ts';
import type { StoreDb } from '../store/db.ts';

const CHUNK = 400;
/**
 * Events per synchronous SQLite transaction. A flush at a thousand messages a second holds a few thousand events;
 * written in one go they would hold the event loop for several milliseconds, every SMTP session's next reply
 * waiting behind them. Between chunks the loop turns (setImmediate), so each wait is a fraction of a millisecond.
 */
const SQLITE_CHUNK = 250;

export class EventSink {
  private buf: PosternEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private listeners = new Set<(e: PosternEvent) => void>();
  dropped = 0;

  private readonly db: Kysely<DB>;
  /** SQLite: one prepared statement in one synchronous transaction per batch (nested as a savepoint if needed). */
  private readonly insertSqlite?: (rows: PosternEvent[]) => void;

  constructor(
    store: Pick<StoreDb, 'db' | 'sqlite'>,
    private readonly log: Logger,
    private readonly opts: {
      flushMs?: number;
      maxBuffer?: number;
      /** Hands each batch to another writer instead of the store (a cluster worker sends them to the primary). */
      forward?: (events: PosternEvent[]) => void;
    } = {},
  ) {
    this.db = store.db;
    const sqlite = store.sqlite;
    if (sqlite) {
      const st = sqlite.prepare('insert into events (ts, type, ip, conn_id, msg_id, data) values (?, ?, ?, ?, ?, ?)');
      this.insertSqlite = sqlite.transaction((rows: PosternEvent[]) => {
        for (const e of rows) st.run(e.ts, e.type, e.ip ?? null, e.conn_id ?? null, e.msg_id ?? null, JSON.stringify(e.data));
      });
    }
  }

  /** Records an event. Never throws and never waits for the store. */
  readonly emit: Emit = (type, fields) => {
    const e: PosternEvent = {
      type,
      ts: fields.ts ?? Date.now(),
      ip: fields.ip ?? null,
      conn_id: fields.conn_id ?? null,
      msg_id: fields.msg_id ?? null,
      data: fields.data ?? {},
    };
    this.push(e);
  };

  push(e: PosternEvent): void {
    const level = EVENT_TYPES[e.type].level;
    if (this.log.isLevelEnabled(level)) {
      this.log[level]({ event: e.type, ip: e.ip ?? undefined, cid: e.conn_id ?? undefined, msg_id: e.msg_id ?? undefined, ...e.data }, e.type);
    }
    for (const l of this.listeners) l(e);
    if (this.buf.length >= (this.opts.maxBuffer ?? 200_000)) {
      // The store is far behind; keep the process alive rather than grow without bound.
      this.dropped++;
      return;
    }
    this.buf.push(e);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.opts.flushMs ?? 200);
      this.timer.unref();
    }
  }

  subscribe(fn: (e: PosternEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Writes everything buffered so far. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    // What was buffered when this write began; events that arrive while it yields wait for the next flush (their
    // push set its timer), so a flush ends under any load.
    let left = this.buf.length;
    while (left > 0 && this.buf.length) {
      const batch = this.buf.splice(0, Math.min(left, this.opts.forward ? 5000 : this.insertSqlite ? SQLITE_CHUNK : CHUNK));
      left -= batch.length;
      try {
        if (this.opts.forward) {
          this.opts.forward(batch);
          continue;
        }
        if (this.insertSqlite) {
          this.insertSqlite(batch);
          if (left > 0) await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        await this.db
          .insertInto('events')
          .values(
            batch.map((e) => ({
              ts: e.ts,
              type: e.type,
              ip: e.ip ?? null,
              conn_id: e.conn_id ?? null,
              msg_id: e.msg_id ?? null,
              data: JSON.stringify(e.data),
            })),
          )
          .execute();
      } catch (err) {
        this.log.error({ err, events: batch.length }, 'event store write failed; events dropped');
        this.dropped += batch.length;
      }
    }
  }
}
