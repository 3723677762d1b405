// Taking ownership of a message: spool file fsynced, then its index rows committed, in batches (group commit).
// Only when this resolves may the gateway answer 250.
import type { Insertable, Kysely } from 'kysely';
import type { DB, MessagesTable, QuarantineTable, RecipientsTable } from '../store/schema.ts';
import type { Spool } from './spool.ts';
import type { BlobStore } from '../quarantine/blobs.ts';

export interface Acceptance {
  message: Insertable<MessagesTable>;
  recipients: Insertable<RecipientsTable>[];
  /** Quarantine rows; their blob key is filled in here. */
  quarantine: Omit<Insertable<QuarantineTable>, 'blob'>[];
  raw: Buffer;
}

interface Pending {
  a: Acceptance;
  resolve(): void;
  reject(err: unknown): void;
}

export class Acceptor {
  private queue: Pending[] = [];
  private running = false;

  constructor(
    private readonly spool: Spool,
    private readonly db: Kysely<DB>,
    private readonly blobs: BlobStore,
    /** Makes the committed rows durable (the store's WAL fsync); resolves before any 250. */
    private readonly durable: () => Promise<void> = () => Promise.resolve(),
  ) {}

  async accept(a: Acceptance): Promise<void> {
    const spooled = a.recipients.some((r) => r.status !== 'quarantined');
    try {
      if (spooled) await this.spool.write(a.message.id, a.raw);
      if (a.quarantine.length) {
        const key = await this.blobs.put(a.raw);
        for (const q of a.quarantine) (q as Insertable<QuarantineTable>).blob = key;
      }
    } catch (err) {
      if (spooled) await this.spool.remove(a.message.id).catch(() => undefined);
      throw err;
    }
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ a, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, 500);
        let committed = false;
        try {
          await this.spool.syncDir();
          await this.db.transaction().execute(async (trx) => {
            await trx.insertInto('messages').values(batch.map((p) => p.a.message)).execute();
            const rcpts = batch.flatMap((p) => p.a.recipients);
            for (let i = 0; i < rcpts.length; i += 500) {
              await trx.insertInto('recipients').values(rcpts.slice(i, i + 500)).execute();
            }
            const q = batch.flatMap((p) => p.a.quarantine) as Insertable<QuarantineTable>[];
            if (q.length) await trx.insertInto('quarantine').values(q).execute();
          });
          committed = true;
          await this.durable();
          for (const p of batch) p.resolve();
        } catch (err) {
          // The clients get a 4xx, so none of these may be delivered. If the rows were committed but could not be
          // made durable, take them out again; if even that fails, keep the files: a duplicate (the client sends
          // it again) is better than rows without a file, which would end in a false DSN.
          const undone = !committed || (await this.undo(batch.map((p) => p.a.message.id)));
          if (undone) await Promise.all(batch.map((p) => this.spool.remove(p.a.message.id).catch(() => undefined)));
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
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
