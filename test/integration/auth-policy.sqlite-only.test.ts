// Dovecot's auth-policy protocol served by Postern (monitor/auth-policy.ts): the HTTP contract over real HTTP, then a
// real Dovecot pointed at Postern with no proxy in between: its reports feed the brute-force detector, and once the
// detector blocks an address Dovecot refuses even the right password from it because Postern's answer says so.
import { describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { closedAfterEach, storedEvents } from '../harness/proxy-suite.ts';
import { startDovecot, type Dovecot } from '../harness/dovecot.ts';
import { RawImap } from '../harness/imap-client.ts';
import { addPolicy } from '../../src/policy/admin.ts';
import { AUTH_POLICY_PATH } from '../../src/monitor/auth-policy.ts';

const KEY = 'policy-key-3f9a1c';
const ALICE = 'alice@localhost';
const ALICE_PW = 'Correct-Horse-7';
const BOB = 'bob@localhost';
const BOB_PW = 'Bob-Secret-9';
/** A pwhash as Dovecot sends it (12 bits of a keyed SHA-256, in hex); it must never be stored. */
const PWHASH = '7e1';

const open = closedAfterEach();

async function postern(more = ''): Promise<TestPostern> {
  const p = await startTestPostern(`[monitor.auth_policy]\nenabled = true\napi_key = "${KEY}"\n${more}`);
  open.push(p);
  return p;
}

/** One request as Dovecot sends it; returns the HTTP status and the parsed JSON answer. */
async function ask(p: TestPostern, command: string, body: unknown, auth: string | null = `Bearer ${KEY}`): Promise<{ status: number; json: any }> {
  const res = await fetch(`${p.webUrl}${AUTH_POLICY_PATH}?command=${command}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const attempt = (remote: string, login = ALICE) => ({ login, pwhash: PWHASH, remote, device_id: '', protocol: 'imap', session_id: 'S1x' });

describe('the auth policy HTTP contract', () => {
  it('answers allow from the live policies: nothing → 0, a block → -1, a tarpit → seconds, an allow beats a block', async () => {
    const p = await postern();
    const db = p.app.store.db;
    expect(await ask(p, 'allow', attempt('192.0.2.1'))).toEqual({ status: 200, json: { status: 0, msg: 'ok' } });
    await addPolicy(db, { target_kind: 'ip', target: '192.0.2.66', action: 'block', reason: 'test block', ttl_s: 600 });
    await addPolicy(db, { target_kind: 'user', target: BOB, action: 'tarpit', params: { delay_ms: 2_500 }, reason: 'test tarpit', ttl_s: 600 });
    await addPolicy(db, { target_kind: 'cidr', target: '198.51.100.0/24', action: 'block', reason: 'test net', ttl_s: 600 });
    await addPolicy(db, { target_kind: 'ip', target: '198.51.100.7', action: 'allow', reason: 'the office', ttl_s: 600 });
    await p.app.policies.load();
    // No msg: Dovecot would show it to the client as an [ALERT], telling the attacker that a policy stopped him.
    expect((await ask(p, 'allow', attempt('192.0.2.66'))).json).toEqual({ status: -1, msg: '' });
    expect((await ask(p, 'allow', attempt('192.0.2.2', BOB))).json).toEqual({ status: 3, msg: 'tarpit' });
    expect((await ask(p, 'allow', attempt('198.51.100.8'))).json.status).toBe(-1);
    expect((await ask(p, 'allow', attempt('198.51.100.7'))).json.status).toBe(0);
  });

  it('a protected user: -1 from an address never seen, 0 from one it logged in from (reported by Dovecot)', async () => {
    const p = await postern();
    expect((await ask(p, 'report', { ...attempt('192.0.2.11', BOB), success: true, policy_reject: false })).json).toEqual({ status: 0, msg: 'recorded' });
    await addPolicy(p.app.store.db, { target_kind: 'user', target: BOB, action: 'protect', reason: 'test protect', ttl_s: 600 });
    await p.app.policies.load();
    expect((await ask(p, 'allow', attempt('192.0.2.12', BOB))).json).toEqual({ status: -1, msg: '' });
    expect((await ask(p, 'allow', attempt('192.0.2.11', BOB))).json.status).toBe(0);
    expect((await ask(p, 'allow', attempt('192.0.2.12', ALICE))).json.status).toBe(0);
  });

  it('records reports as auth.* events with the remote address; its own refusals as refusals; never the pwhash', async () => {
    const p = await postern();
    const block = await addPolicy(p.app.store.db, { target_kind: 'ip', target: '192.0.2.66', action: 'block', reason: 'test block', ttl_s: 600 });
    await p.app.policies.load();
    await ask(p, 'report', { ...attempt('192.0.2.20'), success: false, policy_reject: false });
    await ask(p, 'report', { ...attempt('192.0.2.21'), protocol: 'pop3', success: true, policy_reject: false });
    await ask(p, 'report', { ...attempt('192.0.2.66'), success: false, policy_reject: true });
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ ip: '192.0.2.20', conn_id: 'S1x', data: { user: ALICE, protocol: 'imap', via: 'dovecot-policy', session: 'S1x' } });
    expect((await storedEvents(p, 'auth.succeeded'))[0]).toMatchObject({ ip: '192.0.2.21', data: { user: ALICE, protocol: 'pop3', via: 'dovecot-policy' } });
    const refused = await storedEvents(p, 'imap.login.refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ ip: '192.0.2.66', data: { user: ALICE, policy: block.id, target_kind: 'ip', via: 'dovecot-policy' } });
    const all = await p.app.store.db.selectFrom('events').select('data').execute();
    expect(all.map((e) => e.data).join('\n')).not.toContain('pwhash');
  });

  it('refuses a missing or wrong key with 401 and takes the key as basic auth password too', async () => {
    const p = await postern();
    const none = await ask(p, 'allow', attempt('192.0.2.1'), null);
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('auth_policy_server_api_header') });
    expect(await ask(p, 'allow', attempt('192.0.2.1'), 'Bearer wrong-key')).toMatchObject({ status: 401, json: { error: { message: 'wrong monitor.auth_policy.api_key' } } });
    const basic = `Basic ${Buffer.from(`dovecot:${KEY}`).toString('base64')}`;
    expect(await ask(p, 'allow', attempt('192.0.2.1'), basic)).toEqual({ status: 200, json: { status: 0, msg: 'ok' } });
    expect((await ask(p, 'allow', attempt('192.0.2.1'), `Basic ${Buffer.from('dovecot:nope').toString('base64')}`)).status).toBe(401);
  });

  it('refuses a bad body or command with 400 naming the field, and records nothing', async () => {
    const p = await postern();
    const bad = async (command: string, body: unknown) => {
      const r = await ask(p, command, body);
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('bad_request');
      return String(r.json.error.message);
    };
    expect(await bad('allow', { login: ALICE, pwhash: PWHASH })).toBe("body remote: missing; add remote=%{rip} to Dovecot's auth_policy_request_attributes");
    expect(await bad('allow', { ...attempt('not-an-ip') })).toMatch(/^body remote: expected the client's IP address/);
    expect(await bad('allow', { ...attempt('192.0.2.1'), login: 7 })).toBe('body login: expected a string');
    expect(await bad('report', { ...attempt('192.0.2.1') })).toBe('body success: missing; Dovecot sends it in every report');
    expect(await bad('deny', attempt('192.0.2.1'))).toMatch(/^query command: expected command=allow or command=report/);
    expect(await bad('allow', '{"login": "alice@localhost", ')).toMatch(/^the body is not valid JSON/);
    expect(await bad('allow', '[1, 2]')).toMatch(/^body: /);
    // A huge value is refused too, and the process goes on answering.
    expect(await bad('allow', { ...attempt('192.0.2.1'), login: 'x'.repeat(2_000) })).toBe('body login: longer than 320 characters');
    expect((await ask(p, 'allow', attempt('192.0.2.1'))).json.status).toBe(0);
    expect(await storedEvents(p, 'auth.failed')).toHaveLength(0);
  });

  it('is not served unless enabled; enabling it without a key is a config error naming the key', async () => {
    const p = await startTestPostern('');
    open.push(p);
    const res = await fetch(`${p.webUrl}${AUTH_POLICY_PATH}?command=allow`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(attempt('192.0.2.1')) });
    expect(res.status).toBe(404);
    await expect(startTestPostern('[monitor.auth_policy]\nenabled = true\n')).rejects.toThrow(/monitor\.auth_policy\.api_key.*required when monitor\.auth_policy\.enabled is true/s);
  });
});

const why = await missing('dovecot');

describe.skipIf(why)('a real Dovecot asking Postern (no proxy)', () => {
  /** Postern with the analyzer, then a Dovecot whose auth policy server is Postern's web server. */
  async function pair(): Promise<{ p: TestPostern; dv: Dovecot }> {
    const p = await postern('[trends]\npoll_ms = 50\n[trends.brute_force]\nip_failures = 5\n');
    const dv = await startDovecot({
      users: { alice: ALICE_PW, bob: BOB_PW },
      authFailureDelayS: 0,
      noPenalty: true,
      authPolicy: { url: `${p.webUrl}${AUTH_POLICY_PATH}`, apiKey: KEY, nonce: 'test-nonce-8d2e' },
    });
    open.push({ close: () => dv.stop() });
    return { p, dv };
  }

  async function login(dv: Dovecot, ip: string, user: string, pw: string): Promise<string> {
    const { c } = await RawImap.open(dv.imapPort, { localAddress: ip });
    open.push(c);
    const res = await c.cmd('a', `LOGIN ${user} ${pw}`);
    c.close();
    return res;
  }

  it('failed logins reach the brute-force detector; then the right password from that address is refused, another address logs in', async () => {
    const { p, dv } = await pair();
    for (let i = 0; i < 5; i++) expect(await login(dv, '127.0.70.66', ALICE, `guess-${i}`)).toMatch(/^a NO /m);
    const failed = await until(async () => {
      const ev = await storedEvents(p, 'auth.failed');
      return ev.length >= 5 ? ev : undefined;
    }, 5_000, 'auth.failed events from the reports');
    expect(failed[0]).toMatchObject({ ip: '127.0.70.66', data: { user: ALICE, protocol: 'imap', via: 'dovecot-policy' } });
    expect(failed.map((e) => e.data.session)).toEqual(failed.map(() => expect.any(String)));
    const block = await until(() => p.app.policies.match({ ip: '127.0.70.66' }).find((x) => x.action === 'block'), 5_000, 'the brute-force block');
    expect(block).toMatchObject({ target_kind: 'ip', target: '127.0.70.66' });
    expect(await login(dv, '127.0.70.66', ALICE, ALICE_PW)).toMatch(/^a NO \[AUTHENTICATIONFAILED\] Authentication failed\./m);
    expect(await login(dv, '127.0.70.10', ALICE, ALICE_PW)).toMatch(/^a OK/m);
    // Dovecot's report of its refusal is recorded as Postern's refusal, not as one more failure.
    const refused = await until(async () => (await storedEvents(p, 'imap.login.refused')).find((e) => e.ip === '127.0.70.66'), 5_000, 'the refusal');
    expect(refused.data).toMatchObject({ user: ALICE, policy: block.id, via: 'dovecot-policy' });
    expect((await storedEvents(p, 'auth.failed')).filter((e) => e.ip === '127.0.70.66')).toHaveLength(5);
    expect((await storedEvents(p, 'auth.succeeded')).map((e) => e.ip)).toEqual(['127.0.70.10']);
    // Dovecot understood every answer (it logs a bad one as "Error: policy(…): Policy server …").
    expect(dv.log()).not.toMatch(/Error: policy/);
  }, 30_000);

  it('a protected user logs in from a known address; the right password from a new one is refused', async () => {
    const { p, dv } = await pair();
    expect(await login(dv, '127.0.71.11', BOB, BOB_PW)).toMatch(/^a OK/m);
    await until(async () => (await storedEvents(p, 'auth.succeeded')).length === 1, 5_000, 'the success report');
    const protect = await addPolicy(p.app.store.db, { target_kind: 'user', target: BOB, action: 'protect', reason: 'test protect', ttl_s: 600 });
    await p.app.policies.load();
    expect(await login(dv, '127.0.71.12', BOB, BOB_PW)).toMatch(/^a NO \[AUTHENTICATIONFAILED\] Authentication failed\./m);
    expect(await login(dv, '127.0.71.11', BOB, BOB_PW)).toMatch(/^a OK/m);
    const refused = await until(async () => (await storedEvents(p, 'auth.failed')).find((e) => e.ip === '127.0.71.12'), 5_000, 'the protect refusal');
    expect(refused.data).toMatchObject({ user: BOB, refused_by: protect.id, via: 'dovecot-policy' });
  }, 30_000);
});
