// Asking the relay to try waiting recipients now, from outside it: `postern queue retry|flush` and the center's
// queue API set the recipients' next attempt to now in the store, and the relay that owns them takes them at its
// next poll (Relay.poll, every second). One function for both, so the CLI and the center mean the same thing.
import type { Kysely } from 'kysely';
import type { Emit } from '../core/events.ts';
import type { DB } from '../store/schema.ts';

/** Recipient statuses still waiting for delivery: never tried yet, or failed temporarily. */
export const WAITING = ['queued', 'deferred'] as const;

/**
 * Makes the waiting recipients of one message (`queueId`) or of every message (null) due now; answers how many
 * recipients that touched. Recipients already delivered, bounced, expired or held in quarantine are left alone.
 */
export async function retryNow(db: Kysely<DB>, queueId: string | null, now = Date.now()): Promise<number> {
  let q = db.updateTable('recipients').set({ next_attempt_at: now }).where('status', 'in', [...WAITING]);
  if (queueId !== null) q = q.where('msg_id', '=', queueId);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** retryNow, recorded as a queue.retry_requested event (with the message's id, so it shows in its story). */
export async function requestRetry(db: Kysely<DB>, emit: Emit, queueId: string | null, by: string, now = Date.now()): Promise<number> {
  const recipients = await retryNow(db, queueId, now);
  if (recipients > 0) emit('queue.retry_requested', { msg_id: queueId, data: { scope: queueId === null ? 'all' : 'message', recipients, by } });
  return recipients;
}
