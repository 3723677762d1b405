// The event stream's per-client buffer over a real HTTP connection: events sent faster than the socket takes them
// queue up to the bound, the rest are dropped, and the client is told how many before the queued ones arrive.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PosternEvent } from '../core/events.ts';
import { SseClient, typeFilter } from './api-events.ts';

let server: http.Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

const event = (n: number): PosternEvent => ({ type: 'smtp.connect', ts: n, ip: '192.0.2.1', conn_id: null, msg_id: null, data: { n, pad: 'x'.repeat(1000) } });

describe('SseClient', () => {
  it('drops past its bound while the socket is full and says how many before the queued events', async () => {
    const TOTAL = 2000;
    const BOUND = 50;
    let sseClient: SseClient | undefined;
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      sseClient = new SseClient(res, BOUND);
      // Far faster than any socket: one synchronous burst.
      for (let i = 0; i < TOTAL; i++) sseClient.send(event(i));
      const finish = () => (sseClient!.queued ? res.once('drain', () => setImmediate(finish)) : res.end());
      res.once('drain', () => setImmediate(finish));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const text = await (await fetch(`http://127.0.0.1:${port}/`)).text();

    const frames = text.split('\n\n').filter(Boolean);
    const data = frames.filter((f) => f.startsWith('data: ')).map((f) => (JSON.parse(f.slice(6)) as PosternEvent).data.n as number);
    const notice = frames.findIndex((f) => f.startsWith('event: dropped\n'));
    expect(notice).toBeGreaterThan(0);
    const dropped = (JSON.parse(frames[notice].split('\ndata: ')[1]) as { dropped: number }).dropped;
    expect(dropped).toBeGreaterThan(0);
    // Everything sent is either received once, in order, or counted as dropped.
    expect(data.length + dropped).toBe(TOTAL);
    expect(data).toEqual([...data].sort((a, b) => a - b));
    // The queued events come after the notice: the last BOUND of them are the first BOUND events after the block.
    expect(frames.length - 1 - notice).toBe(BOUND);
    expect(data.at(-1)).toBe(notice + BOUND - 1);
    expect(sseClient!.dropped).toBe(0);
  });
});

describe('typeFilter', () => {
  it('takes exact types and prefixes at a dot', () => {
    const f = typeFilter(['smtp', 'relay.delivered']);
    expect(['smtp.connect', 'smtp.rcpt.rejected', 'relay.delivered'].every(f)).toBe(true);
    expect(['smtpx.connect', 'relay.deferred', 'message.accepted'].some(f)).toBe(false);
    expect(typeFilter(undefined)('anything')).toBe(true);
  });
});
