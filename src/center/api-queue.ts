// The delivery queue under /api/v1/queue: the recipients the relay still has to deliver (oldest first, with filters
// and a cursor, and a summary of the whole queue), and the admin's "try now" for one message or for all, which are
// `postern queue retry|flush` over HTTP (relay/queue-control.ts).
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { requestRetry, WAITING } from '../relay/queue-control.ts';
import { actorOf, allow } from './auth/access.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';
import { cursor, decodeCursor, encodeCursor, limit, parse } from './api-query.ts';

const text = z.string().trim().min(1).max(320);

export const QueueQuery = z.strictObject({
  rcpt: text.optional().describe('A recipient, exactly (case-insensitive).'),
  sender: text.optional().describe('The envelope sender, exactly (case-insensitive); "@domain" for any sender of the domain.'),
  domain: z
    .string()
    .trim()
    .min(1)
    .max(255)
    .regex(/^@?[^\s@]+$/, 'expected a domain such as example.com')
    .optional()
    .describe("The recipient's domain (example.com)."),
  has_error: z.enum(['true', 'false']).optional().describe('true: only recipients whose last attempt failed; false: only those not tried yet or without an error.'),
  limit: limit(50).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

export const QueueParams = z.strictObject({ id: z.string().min(1).max(64).describe('Queue id of the message.') });

const NoBody = z.strictObject({});

/** Wildcards out of a LIKE operand: these filters match exactly, not as patterns. */
const plain = (s: string) => s.toLowerCase().replace(/[%_\\]/g, '');

/** The page key: a message's queue id and a recipient (queue ids have no spaces, so the first one splits them). */
const keyOf = (r: { msg_id: string; rcpt: string }) => `${r.msg_id} ${r.rcpt}`;

export const queueApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db, emit } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };
  const act = { preHandler: allow(deps.config, 'admin') };

  app.get('/', read, async (req) => {
    const q = parse(QueueQuery, req.query, 'query');
    const now = Date.now();
    let s = db
      .selectFrom('recipients')
      .innerJoin('messages', 'messages.id', 'recipients.msg_id')
      .select([
        'recipients.msg_id',
        'recipients.rcpt',
        'recipients.deliver_to',
        'recipients.route',
        'recipients.status',
        'recipients.attempts',
        'recipients.next_attempt_at',
        'recipients.last_error',
        'messages.message_id',
        'messages.mail_from',
        'messages.subject',
        'messages.size',
        'messages.received_at',
      ])
      .where('recipients.status', 'in', [...WAITING]);
    if (q.rcpt) s = s.where('recipients.rcpt', '=', q.rcpt.toLowerCase());
    if (q.domain) s = s.where(({ fn, eb }) => eb(fn('lower', ['recipients.rcpt']), 'like', `%@${plain(q.domain!.replace(/^@/, ''))}`));
    if (q.sender) {
      const v = q.sender.toLowerCase();
      s = v.startsWith('@')
        ? s.where(({ fn, eb }) => eb(fn('lower', ['messages.mail_from']), 'like', `%${plain(v)}`))
        : s.where(({ fn, eb }) => eb(fn('lower', ['messages.mail_from']), '=', v));
    }
    if (q.has_error === 'true') s = s.where('recipients.last_error', 'is not', null);
    if (q.has_error === 'false') s = s.where('recipients.last_error', 'is', null);
    const after = decodeCursor(q.cursor, 'string');
    if (after !== undefined) {
      const cut = after.indexOf(' ');
      const [id, rcpt] = cut < 0 ? [after, ''] : [after.slice(0, cut), after.slice(cut + 1)];
      s = s.where((eb) => eb.or([eb('recipients.msg_id', '>', id), eb.and([eb('recipients.msg_id', '=', id), eb('recipients.rcpt', '>', rcpt)])]));
    }
    // Queue ids sort by arrival: the oldest waiting mail first, which is what an admin looks at in an outage.
    const rows = await s.orderBy('recipients.msg_id').orderBy('recipients.rcpt').limit(q.limit + 1).execute();
    const items = rows.slice(0, q.limit);
    const next_cursor = rows.length > q.limit ? encodeCursor(keyOf(items[items.length - 1])) : null;

    // The whole queue, whatever the filters: what the summary line of the page says.
    const sum = await db
      .selectFrom('recipients')
      .innerJoin('messages', 'messages.id', 'recipients.msg_id')
      .select(({ fn }) => [
        fn.countAll<number>().as('recipients'),
        fn.count<number>('recipients.msg_id').distinct().as('messages'),
        fn.count<number>('recipients.last_error').as('with_errors'),
        fn.min<number>('messages.received_at').as('oldest'),
      ])
      .where('recipients.status', 'in', [...WAITING])
      .executeTakeFirst();
    return {
      items: items.map(({ msg_id, received_at, next_attempt_at, ...r }) => ({
        queue_id: msg_id,
        ...r,
        received_at: Number(received_at),
        next_attempt_at: Number(next_attempt_at),
        age_ms: Math.max(0, now - Number(received_at)),
      })),
      next_cursor,
      limit: q.limit,
      summary: {
        recipients: Number(sum?.recipients ?? 0),
        messages: Number(sum?.messages ?? 0),
        with_errors: Number(sum?.with_errors ?? 0),
        oldest_received_at: sum?.oldest == null ? null : Number(sum.oldest),
      },
    };
  });

  app.post('/flush', act, async (req) => {
    parse(NoBody, req.body, 'body');
    const recipients = await requestRetry(db, emit, null, actorOf(req.principal!));
    return { recipients };
  });

  app.post('/:id/retry', act, async (req) => {
    const { id } = parse(QueueParams, req.params, 'path');
    parse(NoBody, req.body, 'body');
    const recipients = await requestRetry(db, emit, id, actorOf(req.principal!));
    if (recipients === 0) {
      const known = await db.selectFrom('messages').select('id').where('id', '=', id).executeTakeFirst();
      if (!known) throw new WebError(404, 'not_found', `no message ${id}`);
      throw new WebError(409, 'not_waiting', `nothing of ${id} is waiting for delivery: every recipient was delivered, returned or quarantined`);
    }
    return { queue_id: id, recipients };
  });
};
