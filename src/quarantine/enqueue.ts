// Puts a message Postern itself sends (a released copy, a digest) into the spool and the queue, so that the relay
// delivers it like any other: spool file fsynced first, then its rows in one transaction, then made durable.
import type { Kysely, Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { queueId } from '../core/ids.ts';
import { routeFor } from '../relay/route.ts';
import type { Spool } from '../gateway/spool.ts';
import type { DB } from '../store/schema.ts';

export interface Outgoing {
  raw: Buffer;
  mailFrom: string;
  rcpt: string;
  subject: string | null;
  messageId: string | null;
  /** Copied from the original of a released copy, so that its trace keeps the verdict. */
  score?: number;
  symbols?: string;
  /** What this message is, for the trace: { released_from, quarantine_id, by } or { digest_for }. */
  verdict: Record<string, unknown>;
  reason: string;
}

export interface EnqueueDeps {
  db: Kysely<DB>;
  spool: Spool;
  config: Config;
  durable: () => Promise<void>;
}

/**
 * Writes the message and commits its rows; `alsoInTx` runs in the same transaction (the quarantine entry's change
 * of status), and its false return aborts the whole (the spool file is removed again). Returns the queue id, or
 * undefined when `alsoInTx` said no.
 */
export async function enqueue(deps: EnqueueDeps, m: Outgoing, alsoInTx?: (trx: Transaction<DB>) => Promise<boolean>): Promise<string | undefined> {
  const { db, spool, config } = deps;
  const now = Date.now();
  const id = queueId(now);
  await spool.write(id, m.raw);
  await spool.syncDir();
  const rcpt = m.rcpt.toLowerCase();
  let ok = true;
  try {
    await db.transaction().execute(async (trx) => {
      if (alsoInTx && !(await alsoInTx(trx))) {
        ok = false;
        return;
      }
      await trx
        .insertInto('messages')
        .values({
          id,
          message_id: m.messageId,
          received_at: now,
          conn_id: null,
          client_ip: null,
          helo: null,
          mail_from: m.mailFrom,
          size: m.raw.length,
          subject: m.subject,
          score: m.score ?? 0,
          symbols: m.symbols ?? '[]',
          verdict: JSON.stringify(m.verdict),
          status: 'queued',
        })
        .execute();
      await trx
        .insertInto('recipients')
        .values({
          msg_id: id,
          rcpt,
          action: 'accept',
          reasons: JSON.stringify([{ source: 'quarantine', action: 'accept', detail: m.reason }]),
          status: 'queued',
          route: routeFor(rcpt, config),
          deliver_to: rcpt,
          attempts: 0,
          next_attempt_at: now,
          last_error: null,
          updated_at: now,
        })
        .execute();
    });
    if (ok) await deps.durable();
  } catch (err) {
    await spool.remove(id).catch(() => undefined);
    throw err;
  }
  if (!ok) {
    await spool.remove(id).catch(() => undefined);
    return undefined;
  }
  return id;
}
