// The events API: /api/v1/events lists the stored event stream, newest first, with filters and a cursor;
// /api/v1/stream sends new events as they happen (server-sent events), from an in-process subscription to the
// event sink. A slow client never holds the sink up: its events queue up to a bound, then are dropped and counted.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import { z } from 'zod';
import type { PosternEvent } from '../core/events.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';
import { allow } from './auth/access.ts';
import { cursor, decodeCursor, limit, page, parse, time } from './api-query.ts';

/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** Events held for a client that reads slower than they come; past this they are dropped and the client told. */
export const CLIENT_BUFFER = 1_000;
/** Streams open at once; one more is answered 503. */
const MAX_STREAMS = 100;

const types = z
  .string()
  .max(1000)
  .transform((s) => s.split(',').map((t) => t.trim().replace(/\.?\*$/, '')).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/, 'expected event types or prefixes such as "smtp" or "relay.delivered"')).max(50));

export const EventsQuery = z.strictObject({
  type: types.optional().describe('Event types, comma-separated; "smtp" (or "smtp.*") is every smtp.* type.'),
  ip: z.string().min(1).max(64).optional().describe('The client IP address.'),
  msg_id: z.string().min(1).max(64).optional().describe('The queue id of the message.'),
  conn_id: z.string().min(1).max(64).optional().describe('The connection or session id.'),
  since: time.optional().describe('At or after (ms since the epoch or ISO 8601).'),
  until: time.optional().describe('Before (ms since the epoch or ISO 8601).'),
  limit: limit(100).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

export const StreamQuery = z.strictObject({
  types: types.optional().describe('Event types or prefixes to send, comma-separated; all when absent.'),
});

/** True for a type that is one of `wanted` or under one of them ("smtp" covers "smtp.connect"). */
export function typeFilter(wanted: string[] | undefined): (type: string) => boolean {
  if (!wanted?.length) return () => true;
  return (type) => wanted.some((w) => type === w || type.startsWith(`${w}.`));
}

/** One open stream: writes while the socket keeps up, queues while it does not, drops past CLIENT_BUFFER. */
export class SseClient {
  private queue: string[] = [];
  private blocked = false;
  dropped = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly max = CLIENT_BUFFER,
  ) {
    res.on('drain', () => this.drain());
  }

  /** Events waiting for the socket. */
  get queued(): number {
    return this.queue.length;
  }

  send(e: PosternEvent): void {
    this.write(`data: ${JSON.stringify(e)}\n\n`);
  }

  comment(text: string): void {
    // Not queued: a heartbeat behind a full queue has nothing to say.
    if (!this.blocked) this.blocked = !this.res.write(`: ${text}\n\n`);
  }

  private write(frame: string): void {
    if (this.res.writableEnded) return;
    if (this.blocked) {
      if (this.queue.length >= this.max) this.dropped++;
      else this.queue.push(frame);
      return;
    }
    this.blocked = !this.res.write(frame);
  }

  private drain(): void {
    this.blocked = false;
    if (this.dropped) {
      // Said before the queued events, so the client knows the gap lies before them.
      this.blocked = !this.res.write(`event: dropped\ndata: ${JSON.stringify({ dropped: this.dropped })}\n\n`);
      this.dropped = 0;
    }
    while (this.queue.length && !this.blocked) this.blocked = !this.res.write(this.queue.shift()!);
  }
}

export const eventsApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };
  const streams = new Set<ServerResponse>();
  // Open streams would keep the server from closing.
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.get('/events', read, async (req) => {
    const q = parse(EventsQuery, req.query, 'query');
    let s = db.selectFrom('events').selectAll();
    if (q.type?.length) {
      const t = q.type;
      s = s.where((eb) => eb.or(t.flatMap((w) => [eb('type', '=', w), eb(sql<string>`substr(type, 1, ${w.length + 1})`, '=', `${w}.`)])));
    }
    if (q.ip) s = s.where('ip', '=', q.ip.replace(/^::ffff:(?=\d+\.)/i, ''));
    if (q.msg_id) s = s.where('msg_id', '=', q.msg_id);
    if (q.conn_id) s = s.where('conn_id', '=', q.conn_id);
    if (q.since !== undefined) s = s.where('ts', '>=', q.since);
    if (q.until !== undefined) s = s.where('ts', '<', q.until);
    const after = decodeCursor(q.cursor, 'number');
    if (after !== undefined) s = s.where('id', '<', after);
    const rows = await s.orderBy('id', 'desc').limit(q.limit + 1).execute();
    const { items, next_cursor } = page(rows, q.limit, (r) => Number(r.id));
    return { items: items.map((e) => ({ ...e, id: Number(e.id), ts: Number(e.ts), data: JSON.parse(e.data) as unknown })), next_cursor, limit: q.limit };
  });

  app.get('/stream', read, async (req, reply) => {
    const q = parse(StreamQuery, req.query, 'query');
    const sink = deps.sink;
    if (!sink) throw new WebError(503, 'unavailable', 'this process does not see the event stream');
    if (streams.size >= MAX_STREAMS) throw new WebError(503, 'unavailable', `too many open streams (${MAX_STREAMS})`);
    const match = typeFilter(q.types);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Behind nginx: pass each event on as it comes.
      'x-accel-buffering': 'no',
    });
    res.write(': stream open\n\n');
    const client = new SseClient(res);
    streams.add(res);
    const off = sink.subscribe((e) => {
      if (match(e.type)) client.send(e);
    });
    const beat = setInterval(() => client.comment(`heartbeat ${Date.now()}`), HEARTBEAT_MS);
    beat.unref();
    res.on('close', () => {
      off();
      clearInterval(beat);
      streams.delete(res);
    });
  });
};
