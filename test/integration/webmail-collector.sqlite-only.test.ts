// The webmail collector and the audit API over real HTTP to a running Postern: logins become the proxies' auth.*
// events (the brute-force detector blocks a guessing address and the next login's answer says so; a protected user
// gets in only from a known address), an audited user's actions are in the trail the audit API serves, bad payloads
// and keys are refused, and the shipped client module talks to it.
import { describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { closedAfterEach, storedEvents } from '../harness/proxy-suite.ts';
import { addPolicy, getPolicy } from '../../src/policy/admin.ts';
import { WEBMAIL_PATH } from '../../src/monitor/collector/webmail.ts';
import { createCollector, PosternError } from '../../clients/webmail/postern-webmail.mjs';

const KEY = 'wm-key-5b1e77';
const OTHER_KEY = 'wm-key-other-0c4d';
const TOKEN = 'api-token-91ac3f';
const CEO = 'ceo@example.org';
const BOB = 'bob@example.org';

const open = closedAfterEach();

async function postern(more = ''): Promise<TestPostern> {
  const p = await startTestPostern(
    `[web]\napi_token = "${TOKEN}"\n[monitor.webmail]\nenabled = true\nkeys = [{ name = "roundcube", key = "${KEY}" }, { name = "sogo", key = "${OTHER_KEY}" }]\n[monitor.audit]\nusers = ["${CEO}"]\n${more}`,
  );
  open.push(p);
  return p;
}

async function post(p: TestPostern, body: unknown, key: string | null = KEY): Promise<{ status: number; json: any }> {
  const res = await fetch(`${p.webUrl}${WEBMAIL_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

async function audit(p: TestPostern, query: string, token: string | null = TOKEN): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`${p.webUrl}/api/v1/audit?${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('the webmail collector', () => {
  it('records logins as the proxies do and an audited user\'s actions in the trail the audit API serves', async () => {
    const p = await postern();
    const client = createCollector({ url: p.webUrl, key: KEY });
    const ua = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0';
    const login = await client.login({ user: CEO, client_ip: '192.0.2.7', user_agent: ua, session: 'rc-sess-1' });
    expect(login).toMatchObject({ action: 'allow', session: 'rc-sess-1' });
    const past = Date.now() - 60_000;
    const batch = await post(p, [
      { type: 'read', user: CEO, client_ip: '192.0.2.7', session: 'rc-sess-1', folder: 'INBOX', uid: 42, message_id: '<m42@example.org>', ts: new Date(past).toISOString() },
      { type: 'send', user: CEO, client_ip: '192.0.2.7', session: 'rc-sess-1', to: ['a@example.com', 'b@example.net'], message_id: '<s1@example.org>', size: 4711 },
      { type: 'logout', user: CEO, client_ip: '192.0.2.7', session: 'rc-sess-1' },
      { type: 'login_failed', user: BOB, client_ip: '::ffff:203.0.113.5', user_agent: ua },
      // Bob is not audited: his read is taken and answered, and not recorded.
      { type: 'read', user: BOB, client_ip: '203.0.113.5', folder: 'INBOX', uid: 1 },
    ]);
    expect(batch).toEqual({ status: 200, json: { accepted: 5, results: [{ action: 'allow', session: 'rc-sess-1' }, { action: 'allow', session: 'rc-sess-1' }, { action: 'allow', session: 'rc-sess-1' }, { action: 'allow' }, { action: 'allow' }] } });

    // The proxies' data shape: user, protocol, session, tls; the browser's address as the event's ip.
    const ok = await storedEvents(p, 'auth.succeeded');
    expect(ok).toHaveLength(1);
    expect(ok[0]).toMatchObject({ ip: '192.0.2.7', conn_id: 'rc-sess-1', data: { user: CEO, protocol: 'webmail', session: 'rc-sess-1', tls: null, source: 'webmail:roundcube', user_agent: ua } });
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ ip: '203.0.113.5', data: { user: BOB, protocol: 'webmail', source: 'webmail:roundcube' } });
    expect(failed[0].data.refused_by).toBeUndefined();
    const cmds = await storedEvents(p, 'audit.command');
    expect(cmds.map((e) => e.data.command)).toEqual(['READ', 'SEND', 'LOGOUT']);
    // An event dated by the webmail keeps its time.
    expect(Number(cmds[0].ts)).toBe(past);
    expect(cmds[1].data).toMatchObject({ user: CEO, session: 'rc-sess-1', protocol: 'webmail', to: ['a@example.com', 'b@example.net'], message_id: '<s1@example.org>', size: 4711 });

    // The same trail `postern audit` prints, as JSON and as the story.
    const json = await audit(p, `user=${encodeURIComponent('CEO@example.org')}&since=2h`);
    expect(json.status).toBe(200);
    const trail = JSON.parse(json.body);
    expect(trail.user).toBe(CEO);
    expect(trail.events.map((e: { text: string }) => e.text)).toEqual([
      'READ UID 42 in INBOX, Message-ID <m42@example.org>',
      `webmail login from 192.0.2.7 (${ua})`,
      'SEND to a@example.com, b@example.net, 4711 octets, Message-ID <s1@example.org>',
      'LOGOUT',
    ]);
    expect(trail.events[1]).toMatchObject({ type: 'audit.session', session: 'rc-sess-1', ip: '192.0.2.7', data: { phase: 'login', protocol: 'webmail' } });
    const text = await audit(p, `user=${CEO}&session=rc-sess-1&format=text`);
    expect(text.type).toMatch(/^text\/plain/);
    expect(text.body).toMatch(/^session rc-sess-1 {2}webmail {2}ceo@example\.org {2}\d{4}-\d\d-\d\d\n {2}\d\d:\d\d:\d\d {2}READ UID 42 in INBOX/);
    expect((await audit(p, `user=${CEO}&format=csv`)).body.split('\n')[0]).toMatch(/^time,session,protocol,user,ip,event,command/);
    expect(JSON.parse((await audit(p, `user=${BOB}`)).body).events).toEqual([]);
  });

  it('twelve failed logins from one address: the analyzer blocks it and the next login is answered block', async () => {
    const p = await postern('[trends]\npoll_ms = 50\n');
    const client = createCollector({ url: p.webUrl, key: KEY, batch: { maxEvents: 12, maxDelayMs: 50 } });
    const guesses = await Promise.all(Array.from({ length: 12 }, (_, i) => client.loginFailed({ user: `user${i % 3}@example.org`, client_ip: '198.51.100.66' })));
    expect(guesses.every((g) => g.action === 'allow')).toBe(true);
    const block = await until(() => p.app.policies.match({ ip: '198.51.100.66' }).find((x) => x.action === 'block'), 15_000, 'the brute-force block');
    expect(block).toMatchObject({ target_kind: 'ip', target: '198.51.100.66', reason: expect.stringMatching(/^brute force: \d+ failed logins from 198\.51\.100\.66/) });
    expect(await getPolicy(p.app.store.db, block.id)).toMatchObject({ source: 'analyzer:brute_force', evidence: { protocol: 'webmail' } });
    // The right password now: the webmail is told to refuse it; it is recorded as Postern's refusal, not a login.
    const login = await client.login({ user: BOB, client_ip: '198.51.100.66', session: 'rc-sess-9' });
    expect(login).toMatchObject({ action: 'block', policy: block.id, session: 'rc-sess-9' });
    const refused = (await storedEvents(p, 'auth.failed')).filter((e) => e.data.user === BOB);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ ip: '198.51.100.66', data: { protocol: 'webmail', refused_by: block.id, source: 'webmail:roundcube' } });
    expect(await storedEvents(p, 'auth.succeeded')).toHaveLength(0);
    // Another address is not concerned.
    expect(await client.login({ user: BOB, client_ip: '198.51.100.10' })).toMatchObject({ action: 'allow', session: expect.any(String) });
  }, 20_000);

  it('a protected user: allow from the address it logged in from, protect from a new one, which is never learned', async () => {
    const p = await postern();
    expect((await post(p, { type: 'login', user: BOB, client_ip: '192.0.2.11' })).json.action).toBe('allow');
    const protect = await addPolicy(p.app.store.db, { target_kind: 'user', target: BOB, action: 'protect', reason: 'test protect', ttl_s: 600 });
    await p.app.policies.load();
    expect((await post(p, { type: 'login', user: BOB, client_ip: '192.0.2.12' })).json).toMatchObject({ action: 'protect', policy: protect.id });
    expect((await post(p, { type: 'login', user: BOB, client_ip: '192.0.2.12' })).json.action).toBe('protect');
    expect((await post(p, { type: 'login', user: BOB, client_ip: '192.0.2.11' })).json.action).toBe('allow');
    expect((await storedEvents(p, 'auth.succeeded')).map((e) => e.ip)).toEqual(['192.0.2.11', '192.0.2.11']);
    expect((await storedEvents(p, 'auth.failed')).map((e) => [e.ip, e.data.refused_by])).toEqual([['192.0.2.12', protect.id], ['192.0.2.12', protect.id]]);
  });

  it('refuses a bad payload with 400 naming the index and field, and takes nothing of the batch', async () => {
    const p = await postern();
    const bad = async (body: unknown) => {
      const r = await post(p, body);
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('bad_request');
      return String(r.json.error.message);
    };
    const ok = { type: 'login', user: BOB, client_ip: '192.0.2.1' };
    expect(await bad([ok, ok, { ...ok, client_ip: 'not-an-ip' }, ok])).toBe("body[2] client_ip: expected the client's IP address (the browser's, not a proxy's)");
    expect(await bad([ok, { ...ok, type: 'delete' }])).toBe('body[1] type: expected type "login", "login_failed", "logout", "send" or "read"');
    expect(await bad({ type: 'send', user: BOB, client_ip: '192.0.2.1' })).toMatch(/^body to: /);
    expect(await bad({ type: 'send', user: BOB, client_ip: '192.0.2.1', to: [] })).toBe('body to: at least one recipient');
    expect(await bad({ ...ok, user: undefined })).toMatch(/^body user: /);
    expect(await bad({ ...ok, password: 'x' })).toMatch(/^body password: /);
    expect(await bad({ ...ok, ts: Date.now() + 2 * 3_600_000 })).toBe("body ts: more than an hour in the future (is the webmail's clock right?)");
    expect(await bad({ ...ok, ts: 'yesterday' })).toMatch(/^body ts: expected milliseconds since the epoch or an ISO 8601 time/);
    expect(await bad({ ...ok, session: 'has space' })).toMatch(/^body session: /);
    expect(await bad(Array.from({ length: 501 }, () => ok))).toBe('body: at most 500 events in one batch, not 501');
    expect(await bad([])).toBe('body: an empty batch');
    expect(await bad('{"type": "login", ')).toMatch(/^the body is not valid JSON/);
    expect(await storedEvents(p, 'auth.succeeded')).toHaveLength(0);
    // A full batch of 500 (over 64 KiB, the web server's limit for other requests) is taken; a time ahead of
    // Postern's clock within the hour is stored as now.
    const full = Array.from({ length: 500 }, (_, i) => ({ type: 'login_failed', user: `u${i}@example.org`, client_ip: '192.0.2.200', user_agent: 'x'.repeat(200), ts: Date.now() + 1_800_000 }));
    expect(JSON.stringify(full).length).toBeGreaterThan(64 * 1024);
    const r = await post(p, full);
    expect(r).toMatchObject({ status: 200, json: { accepted: 500 } });
    const stored = await storedEvents(p, 'auth.failed');
    expect(stored).toHaveLength(500);
    expect(Math.max(...stored.map((e) => Number(e.ts)))).toBeLessThanOrEqual(Date.now());
  });

  it('refuses a missing or wrong key with 401 before reading the body, and names each installation by its key', async () => {
    const p = await postern();
    const ok = { type: 'login_failed', user: BOB, client_ip: '192.0.2.1' };
    expect(await post(p, ok, null)).toMatchObject({ status: 401, json: { error: { code: 'unauthorized', message: expect.stringContaining('monitor.webmail.keys') } } });
    expect(await post(p, ok, 'wrong')).toMatchObject({ status: 401, json: { error: { message: 'wrong webmail key' } } });
    expect((await post(p, 'not json', 'wrong')).status).toBe(401);
    // The API token is not a webmail key.
    expect((await post(p, ok, TOKEN)).status).toBe(401);
    const client = createCollector({ url: `${p.webUrl}${WEBMAIL_PATH}`, key: 'wrong' });
    const err = await client.loginFailed(ok).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PosternError);
    expect(err).toMatchObject({ status: 401, code: 'unauthorized', message: 'wrong webmail key' });
    expect((await post(p, ok, OTHER_KEY)).status).toBe(200);
    expect((await storedEvents(p, 'auth.failed')).map((e) => e.data.source)).toEqual(['webmail:sogo']);
  });

  it('the audit API wants the API token and a user, and is refused to an unknown token', async () => {
    const p = await postern();
    expect((await audit(p, `user=${CEO}`, null)).status).toBe(401);
    expect((await audit(p, `user=${CEO}`, 'wrong')).status).toBe(401);
    expect(JSON.parse((await audit(p, 'since=1h')).body).error.message).toMatch(/^query user: /);
    expect(JSON.parse((await audit(p, `user=${CEO}&since=soon`)).body).error.message).toMatch(/^query since: "soon" is neither a duration/);
    expect(JSON.parse((await audit(p, `user=${CEO}&format=xml`)).body).error.message).toMatch(/^query format: /);
    expect(JSON.parse((await audit(p, `user=${CEO}`)).body)).toMatchObject({ user: CEO, events: [], truncated: false });
  });

  it('is not served unless enabled; enabling it without a key is a config error', async () => {
    const p = await startTestPostern('');
    open.push(p);
    expect((await fetch(`${p.webUrl}${WEBMAIL_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })).status).toBe(404);
    await expect(startTestPostern('[monitor.webmail]\nenabled = true\n')).rejects.toThrow(/monitor\.webmail\.keys.*needs at least one key/s);
  });
});
