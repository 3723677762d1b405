// The quarantine API over real HTTP: bearer auth, list filters and pagination, release to a real downstream,
// conflicts, and validation errors that name the field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';

const TOKEN = 'api-token-for-tests-0123456789abcdef';
let p: TestPostern;
let sink: Sink;
const ids: Record<string, string> = {};

async function hold(from: string, to: string, subject: string): Promise<string> {
  const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
  const info = await c.sendMail({ envelope: { from, to: [to] }, raw: `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n` });
  const id = `${/queued as (\w+)/.exec(info.response)![1]}.${to}`;
  await until(async () => (await p.app.quarantine.get(id))?.status === 'held', 10_000, 'entry held');
  return id;
}

beforeAll(async () => {
  sink = await startSink();
  process.env.POSTERN_TEST_API_TOKEN = TOKEN;
  p = await startTestPostern(`
[gateway]
domains = ["example.com", "example.net"]
[relay.downstream]
host = "127.0.0.1"
port = ${sink.port}
protocol = "smtp"
tls = "none"
[web]
api_token = { env = "POSTERN_TEST_API_TOKEN" }
[[policy.rules]]
action = "quarantine"
`);
  ids.a1 = await hold('eve@spam.example', 'ann@example.com', 'Cheap watches');
  ids.a2 = await hold('mallory@spam.example', 'ann@example.com', 'Invoice overdue');
  ids.b1 = await hold('eve@spam.example', 'bob@example.com', 'cheap pills');
  ids.c1 = await hold('eve@spam.example', 'cat@example.net', 'Hello there');
});
afterAll(async () => {
  await p?.close();
  await sink?.close();
});

/** A response whose JSON body the assertions read freely. */
type Res = Omit<Response, 'json'> & { json(): Promise<any> };
const api = (path: string, init: RequestInit & { token?: string | null } = {}): Promise<Res> => {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? TOKEN}`);
  return fetch(`${p.webUrl}/api/v1/quarantine${path}`, { ...init, headers }) as Promise<Res>;
};
const post = (path: string, body?: unknown) =>
  api(path, { method: 'POST', ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });

describe('quarantine API', () => {
  it('answers 401 without a token, with a wrong one, and with a malformed header', async () => {
    for (const init of [{ token: null }, { token: 'wrong' }, { token: TOKEN + 'x' }, { token: null, headers: { authorization: `Basic ${TOKEN}` } }]) {
      const r = await api('/', init);
      expect(r.status).toBe(401);
      const body = await r.json();
      expect(body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
    expect((await api(`/${encodeURIComponent(ids.a1)}/release`, { method: 'POST', token: null })).status).toBe(401);
    expect((await api(`/${encodeURIComponent(ids.a1)}/release`, { method: 'POST', token: 'wrong' })).status).toBe(401);
    expect((await p.app.quarantine.get(ids.a1))!.status).toBe('held');
  });

  it('lists with filters and pagination', async () => {
    const all = await (await api('/')).json();
    expect(all).toMatchObject({ total: 4, limit: 50, offset: 0 });
    expect(all.items).toHaveLength(4);
    const subjects = (q: string) => api(`/?${q}`).then((r) => r.json()).then((b) => b.items.map((i: { subject: string }) => i.subject).sort());
    expect(await subjects('rcpt=ann@example.com')).toEqual(['Cheap watches', 'Invoice overdue']);
    expect(await subjects('domain=example.net')).toEqual(['Hello there']);
    expect(await subjects('sender=eve@spam.example')).toEqual(['Cheap watches', 'Hello there', 'cheap pills']);
    expect(await subjects('subject=CHEAP')).toEqual(['Cheap watches', 'cheap pills']);
    expect(await subjects('status=released')).toEqual([]);
    expect(await subjects(`until=${new Date(Date.now() - 86_400_000).toISOString()}`)).toEqual([]);
    expect(await subjects(`since=${Date.now() - 60_000}`)).toHaveLength(4);
    const page1 = await (await api('/?limit=3')).json();
    const page2 = await (await api('/?limit=3&offset=3')).json();
    expect([page1.items.length, page2.items.length, page1.total, page2.total]).toEqual([3, 1, 4, 4]);
    const seen = new Set([...page1.items, ...page2.items].map((i: { id: string }) => i.id));
    expect(seen).toEqual(new Set(Object.values(ids)));
  });

  it('answers 400 naming the field for bad query and body input', async () => {
    const err = async (r: Promise<Res>) => {
      const res = await r;
      return [res.status, (await res.json()).error];
    };
    expect(await err(api('/?limit=0'))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('query limit') }]);
    expect(await err(api('/?limit=abc'))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('query limit') }]);
    expect(await err(api('/?status=gone'))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('query status') }]);
    expect(await err(api('/?since=yesterday'))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('query since') }]);
    expect(await err(api('/?colour=red'))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('colour') }]);
    const id = encodeURIComponent(ids.b1);
    expect(await err(post(`/${id}/allow`, { scope: 'planet' }))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('body scope') }]);
    expect(await err(post(`/${id}/allow`, {}))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('body scope') }]);
    expect(await err(post(`/${id}/report`, { class: 'eggs' }))).toEqual([400, { code: 'bad_request', message: expect.stringContaining('body class') }]);
    const bad = await api(`/${id}/report`, { method: 'POST', body: '{"class":', headers: { 'content-type': 'application/json' } });
    expect([bad.status, (await bad.json()).error.code]).toEqual([400, 'bad_request']);
    const big = await api(`/${id}/report`, { method: 'POST', body: JSON.stringify({ class: 'x'.repeat(100_000) }), headers: { 'content-type': 'application/json' } });
    expect([big.status, (await big.json()).error.code]).toEqual([413, 'payload_too_large']);
    expect((await p.app.quarantine.get(ids.b1))!.status).toBe('held');
  });

  it('shows, downloads, and answers 404 for an unknown id', async () => {
    const id = encodeURIComponent(ids.c1);
    expect(await (await api(`/${id}`)).json()).toMatchObject({ id: ids.c1, rcpt: 'cat@example.net', sender: 'eve@spam.example', subject: 'Hello there', status: 'held' });
    const raw = await api(`/${id}/raw`);
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('message/rfc822');
    expect(raw.headers.get('content-disposition')).toMatch(/^attachment; filename=".+\.eml"$/);
    expect(await raw.text()).toContain('body of Hello there');
    const missing = await api('/nope');
    expect([missing.status, await missing.json()]).toEqual([404, { error: { code: 'not_found', message: 'no quarantined message nope' } }]);
    expect((await post('/nope/release')).status).toBe(404);
    expect((await api('/nowhere/else/at/all')).status).toBe(404);
  });

  it('releases to the downstream once; a second release is 409', async () => {
    const id = encodeURIComponent(ids.a2);
    const r = await post(`/${id}/release`);
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body).toMatchObject({ entry: { id: ids.a2, status: 'released', acted_by: 'api' }, queue_id: expect.any(String) });
    await until(() => sink.messages.some((m) => m.raw.toString().includes('Subject: Invoice overdue')), 10_000, 'released downstream');
    expect(sink.messages.find((m) => m.raw.toString().includes('Subject: Invoice overdue'))!.to).toEqual(['ann@example.com']);
    const again = await post(`/${id}/release`, {});
    expect([again.status, (await again.json()).error.code]).toEqual([409, 'not_held']);
    expect((await api(`/${id}/raw`)).status).toBe(409);
  });

  it('deletes, lists senders by scope, and reports', async () => {
    const b1 = encodeURIComponent(ids.b1);
    const allow = await (await post(`/${b1}/allow`, { scope: 'domain' })).json();
    expect(allow.policy).toMatchObject({ target_kind: 'sender', target: 'eve@spam.example', action: 'allow', params: { for: '*@example.com' } });
    const block = await (await post(`/${b1}/block`, { scope: 'global' })).json();
    expect(block.policy).toMatchObject({ target: 'eve@spam.example', action: 'block', params: {} });
    const rep = await post(`/${b1}/report`, { class: 'spam' });
    expect(rep.status).toBe(200);
    expect(await rep.json()).toEqual({ learned: expect.any(Boolean) });
    const del = await post(`/${b1}/delete`);
    expect([del.status, (await del.json()).entry.status]).toEqual([200, 'deleted']);
    expect((await post(`/${b1}/delete`)).status).toBe(409);
    await p.app.sink.flush();
    const acts = await p.app.store.db.selectFrom('events').select(['type', 'data']).where('type', 'like', 'quarantine.%').execute();
    expect(acts.filter((e) => JSON.parse(e.data).by === 'api').map((e) => e.type).sort()).toEqual(
      ['quarantine.deleted', 'quarantine.released', 'quarantine.reported', 'quarantine.sender_listed', 'quarantine.sender_listed'],
    );
  });
});

describe('quarantine API without a token configured', () => {
  it('answers 401 saying web.api_token is not set', async () => {
    const q = await startTestPostern('');
    try {
      const r = await fetch(`${q.webUrl}/api/v1/quarantine/`, { headers: { authorization: 'Bearer anything' } });
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain('web.api_token is not set');
    } finally {
      await q.close();
    }
  });
});
