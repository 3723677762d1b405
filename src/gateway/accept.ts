// Taking ownership of a message: spool file fsynced and its directory entry synced, then its index rows committed
// and made durable, in batches (group commit). Only when accept() resolves may the gateway answer 250.
//
// The rows go to a RowSink: in one process the RowCommitter below writes them; in a gateway worker they travel to
// the primary process, the store's single writer (src/cluster/), whose RowCommitter writes them.
import type { Insertable, Kysely } from 'kysely';
import type { DB, MessagesTable, QuarantineTable, RecipientsTable } from '../store/schema.ts';
import type { Spool } from './spool.ts';
import type { BlobStore } from '../quarantine/blobs.ts';
import type { FastSqlite } from '../store/fast.ts';
import { coalesce } from '../core/coalesce.ts';

/** The index rows of one message. */
export interface MessageRows {
  message: Insertable<MessagesTable>;
  recipients: Insertable<RecipientsTable>[];
  quarantine: Insertable<QuarantineTable>[];
}

export interface Acceptance extends Omit<MessageRows, 'quarantine'> {
  /** Quarantine rows; their blob key is filled in here. */
  quarantine: Omit<Insertable<QuarantineTable>, 'blob'>[];
  raw: Buffer;
}

/** A commit that failed. `rowsMayExist`: the rows were committed but not made durable and could not be taken out. */
export class CommitError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly rowsMayExist: boolean,
  ) {
    super(message);
  }
}

export interface RowSink {
  /** Resolves once the rows are committed and durable; rejects with a CommitError. */
  commit(rows: MessageRows): Promise<void>;
}

export class Acceptor {
  private readonly syncDir: () => Promise<void>;

  constructor(
    private readonly spool: Spool,
    private readonly blobs: BlobStore,
    private readonly rows: RowSink,
  ) {
    // Every file renamed into the queue before a directory fsync starts is covered by it.
    this.syncDir = coalesce(() => spool.syncDir());
  }

  async accept(a: Acceptance): Promise<void> {
    const spooled = a.recipients.some((r) => r.status !== 'quarantined');
    let quarantine: Insertable<QuarantineTable>[] = [];
    try {
      if (spooled) await this.spool.write(a.message.id, a.raw);
      if (a.quarantine.length) {
        const blob = await this.blobs.put(a.raw);
        quarantine = a.quarantine.map((q) => ({ ...q, blob }));
      }
      if (spooled) await this.syncDir();
    } catch (err) {
      if (spooled) await this.spool.remove(a.message.id).catch(() => undefined);
      throw err;
    }
    try {
      await this.rows.commit({ message: a.message, recipients: a.recipients, quarantine });
    } catch (err) {
      // The client gets a 4xx, so this message may not be delivered. Unless its rows may still exist (a
      // duplicate, when the client sends it again, is better than rows without a file, which end in a false DSN).
      if (spooled && !(err instanceof CommitError && err.rowsMayExist)) {
        await this.spool.remove(a.message.id).catch(() => undefined);
      }
      throw err;
    }
  }
}

interface Pending {
  rows: MessageRows;
  resolve(): void;
  reject(err: unknown): void;
}

/** Commits index rows in batches, each made durable before any of its callers is told. */
export class RowCommitter implements RowSink {
  private queue: Pending[] = [];
  private running = false;
  private readonly insertFast?: (batch: MessageRows[]) => void;

  constructor(
    private readonly db: Kysely<DB>,
    /** Makes the committed rows durable (the store's WAL fsync); resolves before any 250. */
    private readonly durable: () => Promise<void> = () => Promise.resolve(),
    fast?: FastSqlite,
  ) {
    if (fast) {
      this.insertFast = fast.transaction((batch: MessageRows[]) => {
        for (const r of batch) {
          fast.insert('messages', r.message);
          for (const x of r.recipients) fast.insert('recipients', x);
          for (const q of r.quarantine) fast.insert('quarantine', q);
        }
      });
    }
  }

  commit(rows: MessageRows): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, 500);
        const rows = batch.map((p) => p.rows);
        let committed = false;
        try {
          if (this.insertFast) this.insertFast(rows);
          else await this.insertKysely(rows);
          committed = true;
          await this.durable();
          for (const p of batch) p.resolve();
        } catch (err) {
          // If the rows were committed but could not be made durable, take them out again.
          const undone = !committed || (await this.undo(rows.map((r) => r.message.id)));
          const e = err as NodeJS.ErrnoException;
          const failure = new CommitError(e.message, e.code, !undone);
          for (const p of batch) p.reject(failure);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async insertKysely(batch: MessageRows[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('messages').values(batch.map((r) => r.message)).execute();
      const rcpts = batch.flatMap((r) => r.recipients);
      for (let i = 0; i < rcpts.length; i += 500) {
        await trx.insertInto('recipients').values(rcpts.slice(i, i + 500)).execute();
      }
      const q = batch.flatMap((r) => r.quarantine);
      if (q.length) await trx.insertInto('quarantine').values(q).execute();
    });
  }

  private async undo(ids: string[]): Promise<boolean> {
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('quarantine').where('msg_id', 'in', ids).execute();
        await trx.deleteFrom('recipients').where('msg_id', 'in', ids).execute();
        await trx.deleteFrom('messages').where('id', 'in', ids).execute();
      });
      return true;
    } catch {
      return false;
    }
  }
}
