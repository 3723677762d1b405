// The messages API under /api/v1/messages: the data matrix's messages, newest first, with filters and a cursor; and
// one message's whole story (the trace `postern trace` prints), for admins and auditors.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { findTrace, type Trace } from '../matrix/trace.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';
import { allow } from './auth/access.ts';
import { cursor, decodeCursor, likeText, limit, page, parse, time } from './api-query.ts';

export const ACTION_KINDS = ['accept', 'tag', 'quarantine', 'redirect', 'defer', 'reject'] as const;
export const RECIPIENT_STATUSES = ['queued', 'delivered', 'deferred', 'bounced', 'expired', 'quarantined'] as const;

const text = z.string().trim().min(1).max(320);

export const MessagesQuery = z.strictObject({
  sender: text.optional().describe('The envelope sender, exactly (case-insensitive); "@domain" for any sender of the domain.'),
  recipient: text.optional().describe('A recipient, exactly (case-insensitive).'),
  subject: z.string().min(1).max(200).optional().describe('A substring of the subject, case-insensitive.'),
  ip: z.string().min(1).max(64).optional().describe("The client's IP address."),
  action: z.enum(ACTION_KINDS).optional().describe("A recipient's decided action."),
  status: z.enum(RECIPIENT_STATUSES).optional().describe("A recipient's delivery status."),
  since: time.optional().describe('Received at or after (ms since the epoch or ISO 8601).'),
  until: time.optional().describe('Received before (ms since the epoch or ISO 8601).'),
  limit: limit(50).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

export const MessageParams = z.strictObject({ id: z.string().min(1).max(998).describe('Queue id, Message-ID or connection id.') });

type Event = Trace['events'][number];
const ofType = (events: Event[], ...prefixes: string[]) => events.filter((e) => prefixes.some((p) => e.type === p || e.type.startsWith(`${p}.`)));

/** The trace arranged by question: where it came from, what scored, what each recipient got, what happened after. */
export function story(t: Trace) {
  const m = t.message as (Record<string, unknown> & { symbols: unknown[]; verdict: unknown }) | null;
  const smtp = ofType(t.events, 'smtp');
  const connection = {
    conn_id: (m?.conn_id as string | null | undefined) ?? null,
    ip: (m?.client_ip as string | null | undefined) ?? null,
    helo: (m?.helo as string | null | undefined) ?? null,
    events: smtp,
  };
  if (!m) return { id: null, refused: true, connection, events: t.events };
  const { symbols, verdict, ...message } = m;
  return {
    id: t.queue_id,
    refused: false,
    message,
    connection,
    symbols,
    verdict,
    recipients: (t.recipients as { reasons?: { policy_id?: string }[] }[]).map((r) => ({
      ...r,
      policies: [...new Set((r.reasons ?? []).flatMap((b) => (b.policy_id ? [b.policy_id] : [])))],
    })),
    deliveries: ofType(t.events, 'relay'),
    quarantine: { copies: t.quarantine ?? [], actions: ofType(t.events, 'quarantine', 'message.quarantined') },
    retro: ofType(t.events, 'retro', 'similarity', 'outbound.outbreak_refused'),
    policies: t.policies ?? [],
    events: t.events,
  };
}

export const messagesApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };

  app.get('/', read, async (req) => {
    const q = parse(MessagesQuery, req.query, 'query');
    let s = db.selectFrom('messages').select(['id', 'message_id', 'received_at', 'conn_id', 'client_ip', 'helo', 'mail_from', 'subject', 'size', 'score', 'status']);
    if (q.sender) {
      const v = q.sender.toLowerCase();
      s = v.startsWith('@')
        ? s.where(({ fn, eb }) => eb(fn('lower', ['mail_from']), 'like', `%${v.replace(/[%_\\]/g, '')}`))
        : s.where(({ fn, eb }) => eb(fn('lower', ['mail_from']), '=', v));
    }
    if (q.subject) s = s.where(({ fn, eb }) => eb(fn('lower', ['subject']), 'like', likeText(q.subject!)));
    if (q.ip) s = s.where('client_ip', '=', q.ip.replace(/^::ffff:(?=\d+\.)/i, ''));
    if (q.recipient || q.action || q.status) {
      s = s.where(({ exists, selectFrom }) => {
        let r = selectFrom('recipients').select('rcpt').whereRef('recipients.msg_id', '=', 'messages.id');
        if (q.recipient) r = r.where('rcpt', '=', q.recipient.toLowerCase());
        if (q.action) r = r.where('action', '=', q.action);
        if (q.status) r = r.where('status', '=', q.status);
        return exists(r);
      });
    }
    if (q.since !== undefined) s = s.where('received_at', '>=', q.since);
    if (q.until !== undefined) s = s.where('received_at', '<', q.until);
    const after = decodeCursor(q.cursor, 'string');
    if (after !== undefined) s = s.where('id', '<', after);
    // Queue ids sort by time: newest first is the primary key backwards.
    const rows = await s.orderBy('id', 'desc').limit(q.limit + 1).execute();
    const { items, next_cursor } = page(rows, q.limit, (r) => r.id);
    // Each item's recipients in one query for the page.
    const rcpts = items.length
      ? await db
          .selectFrom('recipients')
          .select(['msg_id', 'rcpt', 'action', 'status', 'deliver_to'])
          .where('msg_id', 'in', items.map((i) => i.id))
          .execute()
      : [];
    const by = new Map<string, Omit<(typeof rcpts)[number], 'msg_id'>[]>();
    for (const { msg_id, ...r } of rcpts) by.set(msg_id, [...(by.get(msg_id) ?? []), r]);
    return {
      items: items.map((i) => ({
        ...i,
        received_at: Number(i.received_at),
        recipients: by.get(i.id) ?? [],
      })),
      next_cursor,
      limit: q.limit,
    };
  });

  app.get('/:id', read, async (req) => {
    const { id } = parse(MessageParams, req.params, 'path');
    const t = await findTrace({ db }, id);
    if (!t) throw new WebError(404, 'not_found', `no message ${id}`);
    return story(t);
  });
};
