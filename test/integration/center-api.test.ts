// The center's API over real HTTP after real mail went through the gateway: messages listed, filtered, paged and
// told as a story; events listed and streamed as they happen; a policy added through the API that decides the next
// message, then lifted; Prometheus counters that moved; an OpenAPI document that names every /api/v1 route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { documentedRoutes, openApiDocument } from '../../src/center/openapi.ts';

const TOKEN = 'center-api-token-for-tests-0123456789';
const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';
let p: TestPostern;
let sink: Sink;

/** A response whose JSON body the assertions read freely. */
type Res = Omit<Response, 'json'> & { json(): Promise<any> };
const api = (path: string, init: RequestInit & { token?: string | null } = {}): Promise<Res> => {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? TOKEN}`);
  return fetch(`${p.webUrl}${path}`, { ...init, headers }) as Promise<Res>;
};
const get = async (path: string) => {
  const r = await api(path);
  expect(r.status, `${path}: ${await r.clone().text()}`).toBe(200);
  return r.json();
};
const post = (path: string, body?: unknown) =>
  api(path, { method: 'POST', ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });

/** One message over SMTP; its queue id. */
async function send(from: string, to: string, subject: string): Promise<string> {
  const c = await RawSmtp.connect(p.port);
  await c.reply();
  await c.cmd('EHLO client.example.org');
  await c.cmd(`MAIL FROM:<${from}>`);
  expect(await c.cmd(`RCPT TO:<${to}>`)).toMatch(/^250/);
  expect(await c.cmd('DATA')).toMatch(/^354/);
  const id = `<${subject.replace(/\W/g, '')}.${Date.now()}@example.org>`;
  const reply = await c.cmd(`From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: ${id}\r\nDate: ${new Date().toUTCString()}\r\n\r\nHello, ${subject}.\r\n.`);
  await c.cmd('QUIT');
  c.close();
  return /queued as (\w+)/.exec(reply)![1];
}

const ids: string[] = [];

beforeAll(async () => {
  sink = await startSink();
  process.env.POSTERN_TEST_CENTER_TOKEN = TOKEN;
  p = await startTestPostern(`
[gateway]
domains = ["example.com"]
[relay.downstream]
host = "127.0.0.1"
port = ${sink.port}
protocol = "smtp"
tls = "none"
[web]
api_token = { env = "POSTERN_TEST_CENTER_TOKEN" }
[web.metrics]
allow = ["10.0.0.0/8", "fd00::/8"]
token = "${METRICS_TOKEN}"
[analysis]
threads = 1
`);
  for (const s of ['Quarterly report', 'Lunch on Friday', 'Quarterly numbers']) ids.push(await send('alice@example.org', 'bob@example.com', s));
  await until(() => sink.messages.length >= 3, 10_000, 'three delivered');
  await p.app.sink.flush();
  await until(async () => (await get('/api/v1/messages?status=delivered')).items.length === 3, 10_000, 'three recorded as delivered');
});
afterAll(async () => {
  await p?.close();
  await sink?.close();
});

describe('center API', () => {
  it('answers 401 without a token and with a wrong one', async () => {
    for (const path of ['/api/v1/messages', `/api/v1/messages/${ids[0]}`, '/api/v1/policies', '/api/v1/events', '/api/v1/stream']) {
      for (const token of [null, 'wrong']) {
        const r = await api(path, { token });
        expect(r.status, path).toBe(401);
        expect(await r.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      }
    }
    expect((await api('/api/v1/policies', { method: 'POST', token: null })).status).toBe(401);
  });

  it('lists messages newest first, filters them and pages with a cursor', async () => {
    const all = await get('/api/v1/messages');
    expect(all.items.map((m: { id: string }) => m.id)).toEqual([...ids].reverse());
    expect(all.next_cursor).toBeNull();
    expect(all.items[0]).toMatchObject({ mail_from: 'alice@example.org', subject: 'Quarterly numbers', client_ip: '127.0.0.1', recipients: [{ rcpt: 'bob@example.com', action: 'accept', status: 'delivered' }] });

    const subjects = async (q: string) => (await get(`/api/v1/messages?${q}`)).items.map((m: { subject: string }) => m.subject);
    expect(await subjects('subject=QUARTERLY')).toEqual(['Quarterly numbers', 'Quarterly report']);
    expect(await subjects('sender=Alice@Example.org&recipient=bob@example.com&ip=127.0.0.1&action=accept')).toHaveLength(3);
    expect(await subjects('sender=@example.org')).toHaveLength(3);
    expect(await subjects('sender=carol@example.org')).toEqual([]);
    expect(await subjects('status=deferred')).toEqual([]);
    const second = all.items[1].received_at as number;
    expect(await subjects(`since=${second}&until=${new Date(all.items[0].received_at).toISOString()}`)).toEqual(['Lunch on Friday']);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string }[]; next_cursor: string | null } = await get(`/api/v1/messages?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items).toHaveLength(1);
      seen.push(page.items[0].id);
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    for (const [q, field] of [['limit=501', 'limit'], ['cursor=nonsense', 'cursor'], ['action=discard', 'action'], ['since=yesterday', 'since'], ['colour=red', 'colour']]) {
      const r = await api(`/api/v1/messages?${q}`);
      expect(r.status).toBe(400);
      const body = await r.json();
      expect(body.error.code).toBe('bad_request');
      expect(body.error.message).toContain(field);
    }
  });

  it("tells a message's story: connection, symbols, recipients, deliveries", async () => {
    const s = await get(`/api/v1/messages/${ids[0]}`);
    expect(s).toMatchObject({ id: ids[0], refused: false, message: { subject: 'Quarterly report', mail_from: 'alice@example.org' } });
    expect(s.connection).toMatchObject({ ip: '127.0.0.1', helo: 'client.example.org', conn_id: expect.any(String) });
    expect(s.connection.events.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['smtp.connect', 'smtp.helo', 'smtp.mail']));
    expect(Array.isArray(s.symbols)).toBe(true);
    for (const sym of s.symbols) expect(sym).toMatchObject({ name: expect.any(String), score: expect.any(Number) });
    expect(s.recipients).toMatchObject([{ rcpt: 'bob@example.com', action: 'accept', status: 'delivered', reasons: expect.any(Array), policies: [] }]);
    expect(s.deliveries.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['relay.attempt', 'relay.delivered']));
    expect(s.deliveries.find((e: { type: string }) => e.type === 'relay.attempt').data.results[0]).toMatchObject({ rcpt: 'bob@example.com', result: 'ok' });
    expect(s.quarantine).toEqual({ copies: [], actions: [] });
    expect(s.events.map((e: { type: string }) => e.type)).toContain('message.accepted');

    const byMessageId = await get(`/api/v1/messages/${encodeURIComponent(s.message.message_id)}`);
    expect(byMessageId.id).toBe(ids[0]);
    const r = await api('/api/v1/messages/0000000000NOSUCHMSG');
    expect(r.status).toBe(404);
    expect((await r.json()).error.code).toBe('not_found');
  });

  it('lists events with type prefixes, filters and a cursor', async () => {
    const smtp = await get('/api/v1/events?type=smtp&limit=500');
    expect(smtp.items.length).toBeGreaterThan(3);
    for (const e of smtp.items) expect(e.type).toMatch(/^smtp\./);
    const mine = await get(`/api/v1/events?type=message.accepted,relay.*&msg_id=${ids[1]}`);
    expect(mine.items.map((e: { type: string }) => e.type).sort()).toEqual(['message.accepted', 'relay.attempt', 'relay.delivered']);
    expect(mine.items[0]).toMatchObject({ id: expect.any(Number), ts: expect.any(Number), msg_id: ids[1], data: expect.any(Object) });
    const ip = await get('/api/v1/events?ip=127.0.0.1&type=smtp.connect');
    expect(ip.items).toHaveLength(3);

    const a = await get('/api/v1/events?limit=2');
    expect(a.items).toHaveLength(2);
    expect(a.items[0].id).toBeGreaterThan(a.items[1].id);
    const b = await get(`/api/v1/events?limit=2&cursor=${a.next_cursor}`);
    expect(b.items[0].id).toBeLessThan(a.items[1].id);
    expect((await api('/api/v1/events?type=SMTP!')).status).toBe(400);
  });

  it('streams new events as server-sent events, filtered by type', async () => {
    const ac = new AbortController();
    const r = await api('/api/v1/stream?types=message.accepted,relay.delivered', { signal: ac.signal });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let text = '';
    const id = await send('alice@example.org', 'bob@example.com', 'Streamed');
    const events: { type: string; msg_id: string }[] = [];
    await until(
      async () => {
        const { value } = await reader.read();
        text += dec.decode(value);
        events.length = 0;
        for (const m of text.matchAll(/^data: (.*)$/gm)) events.push(JSON.parse(m[1]));
        return events.some((e) => e.type === 'relay.delivered' && e.msg_id === id);
      },
      10_000,
      'streamed events',
    );
    expect(text.startsWith(': stream open')).toBe(true);
    expect(events.find((e) => e.type === 'message.accepted')).toMatchObject({ msg_id: id, data: { subject: 'Streamed' } });
    // Only the types asked for.
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['message.accepted', 'relay.delivered']));
    ac.abort();
    ids.push(id);
  });

  it('adds a policy that decides the next message, then lifts it; both are events', async () => {
    const bad = await post('/api/v1/policies', { target_kind: 'planet', target: 'mars', action: 'block' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/^body: target_kind/);
    const noParam = await post('/api/v1/policies', { target_kind: 'sender', target: 'eve@spam.example', action: 'throttle' });
    expect((await noParam.json()).error.message).toContain('params.rate');
    expect((await post('/api/v1/policies', { target_kind: 'sender', target: 'eve@spam.example', action: 'block', source: 'analyzer:x' })).status).toBe(400);

    const r = await post('/api/v1/policies', { target_kind: 'sender', target: 'Eve@Spam.example', action: 'quarantine', reason: 'held for review', ttl_s: 3600 });
    expect(r.status).toBe(201);
    const pol = await r.json();
    expect(pol).toMatchObject({ id: expect.stringMatching(/^P/), target: 'eve@spam.example', action: 'quarantine', source: 'admin', state: 'active' });

    const listed = await get('/api/v1/policies?kind=sender&action=quarantine&source=admin');
    expect(listed.items.map((x: { id: string }) => x.id)).toEqual([pol.id]);
    expect((await get('/api/v1/policies?state=expired')).items).toEqual([]);

    // The next message from eve is held: the policy reached the gateway.
    const held = await send('eve@spam.example', 'bob@example.com', 'Totally legit');
    await p.app.sink.flush();
    const story = await until(async () => {
      const s = await get(`/api/v1/messages/${held}`);
      return s.quarantine.copies.length ? s : undefined;
    });
    expect(story.recipients[0]).toMatchObject({ action: 'quarantine', policies: [pol.id] });
    expect(story.policies).toMatchObject([{ id: pol.id, reason: 'held for review' }]);
    expect(story.quarantine.copies[0]).toMatchObject({ rcpt: 'bob@example.com', status: 'held' });
    expect((await get(`/api/v1/messages?action=quarantine`)).items.map((m: { id: string }) => m.id)).toEqual([held]);

    const pinned = await (await post(`/api/v1/policies/${pol.id}/pin`)).json();
    expect(pinned).toMatchObject({ pinned: true, expires_at: null });
    expect((await post(`/api/v1/policies/${pol.id}/extend`, { ttl_s: 60 })).status).toBe(409);
    expect(await (await post(`/api/v1/policies/${pol.id}/unpin`, { ttl_s: 120 })).json()).toMatchObject({ pinned: false, expires_at: expect.any(Number) });
    const ext = await (await post(`/api/v1/policies/${pol.id}/extend`, { ttl_s: null })).json();
    expect(ext.expires_at).toBeNull();
    expect((await post(`/api/v1/policies/${pol.id}/extend`, { ttl_s: 'soon' })).status).toBe(400);

    const lifted = await post(`/api/v1/policies/${pol.id}/lift`);
    expect(lifted.status).toBe(200);
    expect((await lifted.json()).lifted.id).toBe(pol.id);
    expect((await api(`/api/v1/policies/${pol.id}`)).status).toBe(404);
    expect((await post(`/api/v1/policies/${pol.id}/lift`)).status).toBe(404);

    await p.app.sink.flush();
    const changes = await get('/api/v1/events?type=policy.changed');
    expect(changes.items.map((e: { data: { op: string } }) => e.data.op)).toEqual(['lifted', 'extended', 'unpinned', 'pinned', 'added']);
    expect(changes.items[0].data).toMatchObject({ policy: pol.id, by: 'api', target: 'eve@spam.example' });
  });

  it('serves Prometheus metrics that follow the mail', async () => {
    const scrape = async () => {
      const r = await api('/metrics', { token: METRICS_TOKEN });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
      return r.text();
    };
    const value = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    // Loopback is not in web.metrics.allow here: the metrics token or an admin's token is needed.
    expect((await api('/metrics', { token: null })).status).toBe(403);
    expect((await api('/metrics', { token: 'wrong' })).status).toBe(401);
    expect((await api('/metrics')).status).toBe(200);
    const before = await scrape();
    await send('alice@example.org', 'bob@example.com', 'Counted');
    await until(() => sink.messages.some((m) => m.raw.includes('Subject: Counted')), 10_000, 'delivered');
    await until(async () => value(await scrape(), 'postern_relay_recipients_total{outcome="delivered"}') > value(before, 'postern_relay_recipients_total{outcome="delivered"}'));
    const after = await scrape();
    expect(value(after, 'postern_connections_total{protocol="smtp"}')).toBeGreaterThan(value(before, 'postern_connections_total{protocol="smtp"}'));
    expect(value(after, 'postern_messages_total{action="accept"}')).toBe(value(before, 'postern_messages_total{action="accept"}') + 1);
    expect(value(after, 'postern_delivery_duration_seconds_count{route="downstream"}')).toBeGreaterThan(value(before, 'postern_delivery_duration_seconds_count{route="downstream"}'));
    // Counted since the web server started, all of the test's mail.
    expect(value(after, 'postern_messages_total{action="quarantine"}')).toBe(1);
    expect(after).toMatch(/^postern_queue_depth\{status="queued"\} \d+$/m);
    expect(after).toMatch(/^postern_quarantine_size \d+$/m);
    expect(after).toMatch(/^# TYPE postern_policies_active gauge$/m);
    expect(after).toMatch(/^# TYPE postern_symbol_hits_total counter$/m);
    expect(after).toMatch(/^# TYPE postern_auth_failures_total counter$/m);
    expect(after).toMatch(/^postern_outbreaks_declared_total 0$/m);
    // The mail was analysed in the analysis thread (analysis.threads = 1 above).
    expect(value(after, 'postern_analysis_threads_running')).toBe(1);
    expect(after).toMatch(/^postern_analysis_pending 0$/m);
    expect(value(after, 'postern_analysis_failed')).toBe(0);
    // The spool's segment files, and the process's own figures.
    expect(after).toMatch(/^postern_spool_messages \d+$/m);
    expect(value(after, 'postern_spool_segment_files')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(after).toMatch(/^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
  });

  it('describes every /api/v1 route in its OpenAPI document', async () => {
    const r = await api('/api/v1/openapi.json', { token: null });
    expect(r.status).toBe(200);
    const doc = await r.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    const documented = new Set(
      Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)),
    );
    expect(documented).toEqual(new Set(documentedRoutes()));
    const registered = p.app.web!.routes.filter((x) => / \/api\/v1(\/|$)/.test(x));
    expect(registered.length).toBeGreaterThan(20);
    expect(registered.filter((x) => !documented.has(x))).toEqual([]);
    // The messages query, from its zod schema.
    const list = doc.paths['/api/v1/messages'].get;
    expect(list.parameters.map((x: { name: string }) => x.name)).toEqual(['sender', 'recipient', 'subject', 'ip', 'action', 'status', 'since', 'until', 'limit', 'cursor']);
    expect(list.parameters.find((x: { name: string }) => x.name === 'limit').schema).toMatchObject({ type: 'integer', maximum: 500 });
  });
});
