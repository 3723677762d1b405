// The center's sources API over real HTTP after real mail through the gateway from two loopback addresses: the
// analyzer's per-source metadata ranked by messages and by quarantined copies, with refusals and held shares, the
// policies acting on each source (a sender domain's quarantine, a network's throttle), keyset pages, and access:
// no credentials 401, a user account 403, an auditor 200, a bad kind or cursor 400 with the stable error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { createAccount, createToken } from '../../src/center/auth/accounts.ts';
import { documentedRoutes } from '../../src/center/openapi.ts';

const TOKEN = 'center-sources-token-0123456789';
const PARTNER = '127.0.0.2';
const SPAMMER = '127.0.0.3';
let p: TestPostern;
let sink: Sink;
let userToken: string;
let auditorToken: string;
let domainPolicy: string;
let netPolicy: string;

async function api(path: string, init: { token?: string | null; method?: string; body?: unknown } = {}): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${p.webUrl}${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const get = async (path: string) => {
  const r = await api(path);
  expect(r.status, `${path}: ${JSON.stringify(r.json)}`).toBe(200);
  return r.json;
};

/** One SMTP session from `ip`: each recipient is offered, refused ones left out; the message goes to the rest. */
async function send(ip: string, helo: string, from: string, to: string[]): Promise<{ refused: string[] }> {
  const c = await RawSmtp.connect(p.port, { localAddress: ip });
  try {
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.cmd(`EHLO ${helo}`)).toMatch(/^250/);
    expect(await c.cmd(`MAIL FROM:<${from}>`)).toMatch(/^250 /);
    const refused: string[] = [];
    for (const r of to) if (!(await c.cmd(`RCPT TO:<${r}>`)).startsWith('250')) refused.push(r);
    expect(await c.cmd('DATA')).toMatch(/^354 /);
    const id = `<${Math.random().toString(36).slice(2)}@${from.split('@')[1]}>`;
    expect(await c.cmd(`From: ${from}\r\nTo: ${to[0]}\r\nSubject: from ${helo}\r\nMessage-ID: ${id}\r\nDate: ${new Date().toUTCString()}\r\n\r\nHello.\r\n.`)).toMatch(/^250 /);
    await c.cmd('QUIT');
    return { refused };
  } finally {
    c.sock.destroy();
  }
}

beforeAll(async () => {
  sink = await startSink();
  process.env.POSTERN_TEST_SOURCES_TOKEN = TOKEN;
  p = await startTestPostern(`
[gateway]
domains = ["example.com"]
[relay.downstream]
host = "127.0.0.1"
port = ${sink.port}
protocol = "smtp"
tls = "none"
[web]
api_token = { env = "POSTERN_TEST_SOURCES_TOKEN" }
[trends]
poll_ms = 50
`);
  await createAccount(p.app.store.db, { name: 'ann', role: 'user', password: 'ann password 3', addresses: ['ann@example.com'] });
  await createAccount(p.app.store.db, { name: 'audrey', role: 'auditor', password: 'auditor password 2' });
  userToken = (await createToken(p.app.store.db, 'ann')).token;
  auditorToken = (await createToken(p.app.store.db, 'audrey')).token;

  // The spammer's domain is held by a live policy before it sends: its messages are quarantined.
  const added = await api('/api/v1/policies', { method: 'POST', body: { target_kind: 'domain', target: 'spam.example', action: 'quarantine', reason: 'known spammer' } });
  expect(added.status).toBe(201);
  domainPolicy = added.json.id;
  await until(() => p.app.policies.match({ sender: 'eve@spam.example' }).length > 0, 5000, 'the policy loaded');

  for (let i = 0; i < 3; i++) await send(PARTNER, 'mx.partner.example', 'alice@partner.example', ['bob@example.com']);
  expect(await send(SPAMMER, 'bulk.spam.example', 'eve@spam.example', ['bob@example.com', 'carol@elsewhere.example'])).toEqual({ refused: ['carol@elsewhere.example'] });
  await send(SPAMMER, 'bulk.spam.example', 'Eve@Spam.example', ['ann@example.com']);
  await until(() => sink.messages.length >= 3, 10_000, 'the partner mail delivered');
  await p.app.sink.flush();
  await p.app.analyzer!.drain();
  await until(async () => (await get('/api/v1/sources?kind=address')).items.length === 2, 10_000, 'both sources folded');
  // A network policy added after the traffic, so that it slows nothing down in this test.
  const throttle = await api('/api/v1/policies', { method: 'POST', body: { target_kind: 'cidr', target: '127.0.0.0/8', action: 'throttle', params: { rate: 100, window_s: 60 }, reason: 'loopback' } });
  expect(throttle.status).toBe(201);
  netPolicy = throttle.json.id;
});
afterAll(async () => {
  await p?.close();
  await sink?.close();
});

describe('center sources API', () => {
  it('ranks addresses by messages with their counts, shares, network and the policies acting on them', async () => {
    const page = await get('/api/v1/sources');
    expect(page.next_cursor).toBeNull();
    expect(page.limit).toBe(50);
    expect(page.items.map((s: { key: string }) => s.key)).toEqual([PARTNER, SPAMMER]);
    const [partner, spammer] = page.items;
    expect(partner).toMatchObject({ kind: 'address', key: PARTNER, network: '127.0.0.0/24', connections: 3, messages: 3, recipients: 3, refused: 0, quarantined: 0, refused_share: 0, quarantined_share: 0 });
    expect(partner.first_seen).toBeLessThanOrEqual(partner.last_seen);
    expect(spammer).toMatchObject({ messages: 2, recipients: 3, refused: 1, quarantined: 2, unknown_recipients: 0 });
    expect(spammer.refused_share).toBeCloseTo(1 / 3);
    expect(spammer.quarantined_share).toBeCloseTo(2 / 3);
    // The network's throttle acts on both addresses; the domain's quarantine is the sender's, not the address's.
    for (const s of page.items) expect(s.policies).toEqual([{ id: netPolicy, action: 'throttle', target_kind: 'cidr', target: '127.0.0.0/8', expires_at: null, for: null }]);

    const byHeld = await get('/api/v1/sources?kind=address&sort=quarantined');
    expect(byHeld.items.map((s: { key: string }) => s.key)).toEqual([SPAMMER, PARTNER]);
    const nets = await get('/api/v1/sources?kind=network');
    expect(nets.items).toEqual([expect.objectContaining({ kind: 'network', key: '127.0.0.0/24', network: null, messages: 5, refused: 1, quarantined: 2, policies: [expect.objectContaining({ id: netPolicy })] })]);
    const helos = await get('/api/v1/sources?kind=helo&sort=refused');
    expect(helos.items.map((s: { key: string; refused: number }) => [s.key, s.refused])).toEqual([['bulk.spam.example', 1], ['mx.partner.example', 0]]);
  });

  it('ranks sender domains and senders, and links a domain to its policy', async () => {
    const domains = await get('/api/v1/sources?kind=domain&sort=messages');
    expect(domains.items.map((s: { key: string; messages: number }) => [s.key, s.messages])).toEqual([['partner.example', 3], ['spam.example', 2]]);
    expect(domains.items[0].policies).toEqual([]);
    expect(domains.items[1]).toMatchObject({ kind: 'domain', refused: 1, quarantined: 2, policies: [{ id: domainPolicy, action: 'quarantine', target_kind: 'domain', target: 'spam.example', expires_at: null, for: null }] });
    const senders = await get('/api/v1/sources?kind=sender');
    // Senders are folded lower-case, so Eve's two spellings are one sender; the domain's policy acts on her.
    expect(senders.items.map((s: { key: string; messages: number }) => [s.key, s.messages])).toEqual([['alice@partner.example', 3], ['eve@spam.example', 2]]);
    expect(senders.items[1].policies.map((x: { id: string }) => x.id)).toEqual([domainPolicy]);
    // The messages API filters by the domain the panel links to.
    const msgs = await get('/api/v1/messages?sender=@spam.example');
    expect(msgs.items).toHaveLength(2);
  });

  it('pages with a cursor and filters by last seen', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { key: string }[]; next_cursor: string | null } = await get(`/api/v1/sources?kind=domain&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items).toHaveLength(1);
      seen.push(page.items[0].key);
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(['partner.example', 'spam.example']);
    expect((await get(`/api/v1/sources?since=${Date.now() + 60_000}`)).items).toEqual([]);
    expect((await get(`/api/v1/sources?since=${new Date(Date.now() - 3_600_000).toISOString()}`)).items).toHaveLength(2);
  });

  it('is for admins and auditors: 401 without credentials, 403 for a user account', async () => {
    expect(await api('/api/v1/sources', { token: null })).toEqual({ status: 401, json: { error: { code: 'unauthorized', message: expect.any(String) } } });
    expect(await api('/api/v1/sources', { token: 'wrong-token-0123456789' })).toMatchObject({ status: 401, json: { error: { code: 'unauthorized' } } });
    expect(await api('/api/v1/sources', { token: userToken })).toEqual({ status: 403, json: { error: { code: 'forbidden', message: expect.any(String) } } });
    const audited = await api('/api/v1/sources?kind=domain', { token: auditorToken });
    expect(audited.status).toBe(200);
    expect(audited.json.items).toHaveLength(2);
  });

  it('is registered and described in the OpenAPI document with its query', async () => {
    expect(p.app.web!.routes).toContain('GET /api/v1/sources');
    expect(documentedRoutes()).toContain('GET /api/v1/sources');
    const doc = await get('/api/v1/openapi.json');
    const op = doc.paths['/api/v1/sources'].get;
    expect(op.parameters.map((x: { name: string }) => x.name)).toEqual(['kind', 'sort', 'since', 'limit', 'cursor']);
    expect(op.parameters[0].schema).toMatchObject({ enum: ['address', 'network', 'helo', 'domain', 'sender'], default: 'address' });
  });

  it('answers bad queries with a 400 that names the field', async () => {
    for (const [q, field] of [['kind=country', 'kind'], ['sort=score', 'sort'], ['limit=0', 'limit'], ['limit=501', 'limit'], ['since=yesterday', 'since'], ['cursor=nonsense', 'cursor'], ['colour=red', 'colour']]) {
      const r = await api(`/api/v1/sources?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json).toEqual({ error: { code: 'bad_request', message: expect.stringContaining(field) } });
    }
  });
});
