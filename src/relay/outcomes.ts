// Group commit of delivery outcomes: the results of many concurrent deliveries are written in one transaction
// and made durable before any caller may let a spool file go (reliability.md D-10: a downstream 250 is recorded
// durably before the file is deleted, so a restart neither loses nor re-sends what was acknowledged).
import { sql, type Insertable, type Kysely } from 'kysely';
import type { DB, MessagesTable, RecipientsTable } from '../store/schema.ts';
import type { Spool } from '../gateway/spool.ts';
import type { FastSqlite } from '../store/fast.ts';

export interface RecipientUpdate {
  rcpt: string;
  status: string;
  /** The count after this attempt (for 'delivered' the row's count is incremented in SQL instead). */
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
}

export interface OutcomeRecord {
  msgId: string;
  now: number;
  updates: RecipientUpdate[];
  /** No recipient is left open: the message is marked done. Its spool file goes only after the commit. */
  done: boolean;
  /**
   * A delivery status notification whose spool file is written already. Its rows go into the same transaction
   * as the outcome that caused it, so a crash yields either both or neither (never a second DSN on retry).
   */
  dsn?: { message: Insertable<MessagesTable>; recipients: Insertable<RecipientsTable>[] };
}

interface Pending {
  rec: OutcomeRecord;
  resolve(): void;
  reject(err: unknown): void;
}

const BATCH = 500;

export class OutcomeWriter {
  private queue: Pending[] = [];
  private running = false;
  private readonly writeFast?: (recs: OutcomeRecord[], dsns: NonNullable<OutcomeRecord['dsn']>[]) => void;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly spool: Spool,
    /** Makes committed transactions survive a crash (the store's WAL fsync); see StoreDb.durable. */
    private readonly durable: () => Promise<void>,
    fast?: FastSqlite,
  ) {
    if (fast) {
      const delivered = fast.statement(
        "update recipients set status = 'delivered', attempts = attempts + 1, last_error = null, updated_at = ? where msg_id = ? and rcpt = ?",
      );
      const other = fast.statement(
        'update recipients set status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? where msg_id = ? and rcpt = ?',
      );
      const done = fast.statement("update messages set status = 'done' where id = ?");
      this.writeFast = fast.transaction((recs: OutcomeRecord[], dsns: NonNullable<OutcomeRecord['dsn']>[]) => {
        for (const d of dsns) {
          fast.insert('messages', d.message);
          for (const r of d.recipients) fast.insert('recipients', r);
        }
        const at = Date.now();
        for (const r of recs) {
          for (const u of r.updates) {
            if (u.status === 'delivered') delivered.run(at, r.msgId, u.rcpt);
            else other.run(u.status, u.attempts, u.next_attempt_at, u.last_error, r.now, r.msgId, u.rcpt);
          }
          if (r.done) done.run(r.msgId);
        }
      });
    }
  }

  /**
   * Resolves once the record is committed and durable. Rejects if the transaction failed (nothing written, the
   * DSN file is removed) or if it could not be made durable (the caller must then keep the message's spool file).
   */
  write(rec: OutcomeRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ rec, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, BATCH);
        try {
          await this.commit(batch.map((p) => p.rec));
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async commit(recs: OutcomeRecord[]): Promise<void> {
    const dsns = recs.flatMap((r) => (r.dsn ? [r.dsn] : []));
    try {
      // The DSN files were renamed into the queue; their directory entries must be on disk before the rows are.
      if (dsns.length) await this.spool.syncDir();
      await this.transaction(recs, dsns);
    } catch (err) {
      // Nothing was recorded: the recipients stay open and are tried again, so these DSNs would be orphans.
      await Promise.all(dsns.map((d) => this.spool.remove(d.message.id).catch(() => undefined)));
      throw err;
    }
    // Committed: from here a DSN's rows may exist, so its file stays even if the fsync below fails.
    await this.durable();
  }

  private async transaction(recs: OutcomeRecord[], dsns: NonNullable<OutcomeRecord['dsn']>[]): Promise<void> {
    if (this.writeFast) return this.writeFast(recs, dsns);
    await this.db.transaction().execute(async (trx) => {
      if (dsns.length) {
        await trx.insertInto('messages').values(dsns.map((d) => d.message)).execute();
        await trx.insertInto('recipients').values(dsns.flatMap((d) => d.recipients)).execute();
      }
      // The common outcome, delivered, is one statement for the whole batch (a round trip each would keep the
      // window between a downstream 250 and its record, where a crash means a duplicate, open longer).
      const delivered = recs.flatMap((r) => r.updates.filter((u) => u.status === 'delivered').map((u) => ({ r, u })));
      for (let i = 0; i < delivered.length; i += BATCH) {
        const pairs = delivered.slice(i, i + BATCH).map(({ r, u }) => sql`(${r.msgId}, ${u.rcpt})`);
        await trx
          .updateTable('recipients')
          .set((eb) => ({ status: 'delivered', attempts: eb('attempts', '+', 1), last_error: null, updated_at: Date.now() }))
          .where(sql<boolean>`(msg_id, rcpt) in (${sql.join(pairs)})`)
          .execute();
      }
      for (const r of recs) {
        for (const u of r.updates) {
          if (u.status === 'delivered') continue;
          await trx
            .updateTable('recipients')
            .set({ status: u.status, attempts: u.attempts, next_attempt_at: u.next_attempt_at, last_error: u.last_error, updated_at: r.now })
            .where('msg_id', '=', r.msgId)
            .where('rcpt', '=', u.rcpt)
            .execute();
        }
      }
      const done = recs.filter((r) => r.done).map((r) => r.msgId);
      for (let i = 0; i < done.length; i += BATCH) {
        await trx.updateTable('messages').set({ status: 'done' }).where('id', 'in', done.slice(i, i + BATCH)).execute();
      }
    });
  }
}
