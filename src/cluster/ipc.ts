// The cluster's message protocol. Gateway workers take SMTP sessions and write spool files; the primary process
// is the store's single writer (SQLite allows one writer at a time, and a worker blocked on its lock would stall
// every session it serves) and runs the relay. A worker's rows and events travel here; the 250 waits for the
// primary's answer that the rows are durable.
import type { Worker } from 'node:cluster';
import type { PosternEvent } from '../core/events.ts';
import type { Postern } from '../app.ts';
import { CommitError, type MessageRows, type RowSink } from '../gateway/accept.ts';
import type { Handoff } from '../relay/queue.ts';

export type ToPrimary =
  | { t: 'rows'; seq: number; rows: MessageRows }
  | { t: 'events'; events: PosternEvent[] }
  | { t: 'listening'; smtp: string };

export type ToWorker =
  | { t: 'rows.ok'; seq: number }
  | { t: 'rows.err'; seq: number; message: string; code?: string; rowsMayExist: boolean }
  /** The policy table changed: read it again now rather than at the next second. */
  | { t: 'policies' }
  /** The analyzer wrote new similarity rows: the worker's mirror of the clusters reads them now. */
  | { t: 'similarity' };

/** Primary side: commits a worker's rows, hands the message to the relay, stores its events. */
export function serveWorker(app: Postern, worker: Worker, onListening: (smtp: string) => void): void {
  worker.on('message', (m: ToPrimary) => {
    switch (m.t) {
      case 'rows': {
        const { seq, rows } = m;
        app.rows.commit(rows).then(
          () => {
            send(worker, { t: 'rows.ok', seq });
            // The rows are durable: the relay may start, even before the worker has sent its 250.
            app.relay?.submit(rows.message.id, { message: rows.message, recipients: rows.recipients } as Handoff);
          },
          (err: unknown) => {
            const e = err as CommitError;
            send(worker, { t: 'rows.err', seq, message: e.message, code: e.code, rowsMayExist: Boolean(e.rowsMayExist) });
          },
        );
        break;
      }
      case 'events':
        for (const e of m.events) app.sink.push(e);
        break;
      case 'listening':
        onListening(m.smtp);
        break;
    }
  });
}

function send(worker: Worker, m: ToWorker): void {
  if (worker.isConnected()) worker.send(m);
}

/** Worker side: rows go to the primary, and the promise settles with its answer. */
export class RemoteRows implements RowSink {
  private seq = 0;
  private pending = new Map<number, { resolve(): void; reject(e: unknown): void }>();

  constructor(private readonly proc: NodeJS.Process = process) {
    proc.on('message', (m: ToWorker) => {
      if (m.t !== 'rows.ok' && m.t !== 'rows.err') return;
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (m.t === 'rows.ok') p.resolve();
      else p.reject(new CommitError(m.message, m.code, m.rowsMayExist));
    });
    proc.on('disconnect', () => {
      // The primary is gone: whether it committed is unknown, so the files stay (a duplicate, never a loss).
      for (const p of this.pending.values()) p.reject(new CommitError('store process unavailable', 'EPIPE', true));
      this.pending.clear();
    });
  }

  commit(rows: MessageRows): Promise<void> {
    if (!this.proc.connected || !this.proc.send) {
      return Promise.reject(new CommitError('store process unavailable', 'EPIPE', false));
    }
    const seq = ++this.seq;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.proc.send!({ t: 'rows', seq, rows } satisfies ToPrimary);
    });
  }
}

/** Worker side: a batch of events for the primary to store. */
export function forwardEvents(events: PosternEvent[]): void {
  if (process.connected && process.send) process.send({ t: 'events', events } satisfies ToPrimary);
}

/** Primary side: tells every worker that the policy table changed. */
export function broadcastPolicies(workers: Iterable<Worker | undefined>, what: 'policies' | 'similarity' = 'policies'): void {
  for (const w of workers) if (w && !w.isDead()) send(w, { t: what });
}

/** Worker side: reloads the policy table when the primary says it changed. */
export function followPolicies(app: Postern): void {
  process.on('message', (m: ToWorker) => {
    if (m.t === 'policies') void app.policies.load().catch(() => undefined);
    if (m.t === 'similarity') app.clusters?.kick();
  });
}
