// Accounts of the center over real HTTP: made with postern user, signed in through the form and the JSON API,
// sessions with CSRF, roles on the quarantine and clusters APIs, a user that only ever sees its own mail, account
// tokens and their revocation, the sign-in rate limit and its events.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { freshPgSchema, startTestPostern, TEST_STORE, until, type TestPostern } from '../harness/postern.ts';
import { inProcess } from '../harness/cli.ts';
import { missing } from '../harness/services.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { createAccount } from '../../src/center/auth/accounts.ts';
import { webRequest, type Res, type WebInit, type Who } from '../harness/web.ts';

const API_TOKEN = 'center-accounts-config-token-0123456789';
const PW = { root: 'admin password 1', audrey: 'auditor password 2', ann: 'ann password 3', bob: 'bob password 4' };

let p: TestPostern;
let sink: Sink;
let cliConfig: string;
let dropPg: (() => Promise<void>) | undefined;
const ids: Record<string, string> = {};

const skip = await missing('postgres');

const cli = (...args: string[]) => inProcess([...args, '--config', cliConfig]);

function pwFile(pw: string): string {
  const f = path.join(p.dir, `pw-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(f, `${pw}\n`, { mode: 0o600 });
  return f;
}

async function hold(from: string, to: string, subject: string): Promise<string> {
  const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
  const info = await c.sendMail({ envelope: { from, to: [to] }, raw: `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n` });
  const id = `${/queued as (\w+)/.exec(info.response)![1]}.${to}`;
  await until(async () => (await p.app.quarantine.get(id))?.status === 'held', 10_000, 'entry held');
  return id;
}

beforeAll(async () => {
  if (skip) return;
  sink = await startSink();
  process.env.POSTERN_TEST_CENTER_TOKEN = API_TOKEN;
  // postern user must reach the running Postern's store, so the PostgreSQL schema is made here and named to both.
  let storeSection = '';
  if (TEST_STORE === 'postgres') {
    const schema = await freshPgSchema();
    dropPg = schema.drop;
    storeSection = `[store]\nurl = ${JSON.stringify(schema.url)}\n`;
  }
  p = await startTestPostern(
    `[gateway]
domains = ["example.com", "example.net"]
[relay.downstream]
host = "127.0.0.1"
port = ${sink.port}
protocol = "smtp"
tls = "none"
[web]
api_token = { env = "POSTERN_TEST_CENTER_TOKEN" }
[[policy.rules]]
action = "quarantine"
${storeSection}`,
    { store: 'sqlite' },
  );
  cliConfig = path.join(p.dir, 'cli.toml');
  fs.writeFileSync(cliConfig, `data_dir = ${JSON.stringify(p.dir)}\n${storeSection}`);
  [ids.ann1, ids.ann2, ids.bob1] = await Promise.all([
    hold('eve@spam.example', 'ann@example.com', 'For Ann one'),
    hold('eve@spam.example', 'ann@example.com', 'For Ann two'),
    hold('eve@spam.example', 'bob@example.net', 'For Bob only'),
  ]);
});
afterAll(async () => {
  await p?.close();
  await sink?.close();
  await dropPg?.();
});

/** A response whose JSON body the assertions read freely. */

const web = (pathname: string, who: Who = {}, init: WebInit = {}): Promise<Res> => webRequest(p.webUrl, pathname, who, init);

const sessionCookie = (r: Response) => r.headers.getSetCookie().find((c) => c.startsWith('postern_session='));

async function login(name: string, password: string): Promise<Who & { res: Res; body: any }> {
  const res = await web('/api/v1/session', {}, { method: 'POST', json: { name, password } });
  const body = await res.json();
  const set = sessionCookie(res);
  return { res, body, cookie: set?.split(';')[0], csrf: body.csrf };
}

const q = (id: string) => `/api/v1/quarantine/${encodeURIComponent(id)}`;

describe.skipIf(skip)('center accounts', () => {
  it('postern user adds, lists and refuses bad input with clear errors', async () => {
    expect((await cli('user', 'add', 'root', '--role', 'admin', '--password-file', pwFile(PW.root))).code).toBe(0);
    expect((await cli('user', 'add', 'Audrey', '--role', 'auditor', '--password-file', pwFile(PW.audrey))).code).toBe(0);
    const ann = await cli('user', 'add', 'ann', '--role', 'user', '--address', 'Ann@Example.com', '--password-file', pwFile(PW.ann));
    expect(ann).toMatchObject({ code: 0, stdout: 'account ann added (role user, ann@example.com)\n' });
    expect((await cli('user', 'add', 'bob', '--role', 'user', '--address', 'bob@example.net', '--password-file', pwFile(PW.bob))).code).toBe(0);

    const again = await cli('user', 'add', 'ann', '--role', 'user', '--password-file', pwFile(PW.ann));
    expect([again.code, again.stderr]).toEqual([1, 'postern: an account "ann" already exists\n']);
    const wild = await cli('user', 'add', 'carl', '--role', 'user', '--address', '*@example.com', '--password-file', pwFile(PW.ann));
    expect([wild.code, wild.stderr]).toEqual([64, expect.stringContaining('a user account has single addresses, not a whole domain')]);
    expect(await cli('user', 'add', 'carl', '--role', 'boss', '--password-file', pwFile(PW.ann))).toMatchObject({ code: 64, stderr: expect.stringContaining('--role "boss" is not one of admin, auditor, user') });
    expect(await cli('user', 'add', 'carl', '--role', 'user', '--password-file', pwFile('short'))).toMatchObject({ code: 64, stderr: expect.stringContaining('at least 10 characters') });
    expect(await cli('user', 'add', 'carl', '--role', 'user', '--address', 'not-an-address', '--password-file', pwFile(PW.ann))).toMatchObject({ code: 64, stderr: expect.stringContaining('is not a mail address') });
    expect(await cli('user', 'add', 'bad name!', '--role', 'user', '--password-file', pwFile(PW.ann))).toMatchObject({ code: 64, stderr: expect.stringContaining('account name') });
    // No terminal in a test: without a password option it says how to give one.
    expect(await cli('user', 'passwd', 'ann')).toMatchObject({ code: 64, stderr: expect.stringContaining('--password-stdin') });
    expect((await cli('user', 'remove', 'nobody')).code).toBe(1);
    expect((await cli('user', 'frobnicate')).code).toBe(64);

    const list = JSON.parse((await cli('user', 'list', '--json')).stdout);
    expect(list.map((a: { name: string; role: string; addresses: string[] }) => [a.name, a.role, a.addresses])).toEqual([
      ['ann', 'user', ['ann@example.com']],
      ['audrey', 'auditor', []],
      ['bob', 'user', ['bob@example.net']],
      ['root', 'admin', []],
    ]);
    expect(JSON.stringify(list)).not.toContain('argon2');
    expect((await cli('user', 'list')).stdout).toMatch(/^NAME\s+ROLE\s+ADDRESSES/);
  });

  it('signs in through JSON with a strict, HttpOnly cookie, and says who is signed in', async () => {
    const bad = await login('root', 'wrong password!');
    expect([bad.res.status, bad.body.error.code, bad.cookie]).toEqual([401, 'unauthorized', undefined]);
    const nobody = await login('nobody', PW.root);
    expect([nobody.res.status, nobody.body.error.message]).toEqual([401, bad.body.error.message]);

    const root = await login('ROOT', PW.root);
    expect(root.res.status).toBe(200);
    expect(root.body).toMatchObject({ name: 'root', role: 'admin', csrf: expect.stringMatching(/^[\w-]{40,}$/), expires_at: expect.any(Number) });
    const set = sessionCookie(root.res)!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\//);
    expect(set).not.toMatch(/Secure/); // plain http and no https public_url

    const me = await web('/api/v1/session', root);
    expect(await me.json()).toEqual({ name: 'root', role: 'admin', kind: 'session', addresses: [], csrf: root.csrf });
    expect((await web('/api/v1/session')).status).toBe(401);
    expect((await web('/api/v1/session', { cookie: 'postern_session=made-up-session-value-0123456789' })).status).toBe(401);
    // The configured token still works, as an admin.
    expect(await (await web('/api/v1/session', { token: API_TOKEN })).json()).toMatchObject({ name: 'api', role: 'admin', kind: 'config-token' });
  });

  it('refuses a change made with a session without its CSRF token (403), and takes it with one', async () => {
    const root = await login('root', PW.root);
    const id = ids.ann2;
    const noToken = await web(`${q(id)}/release`, root, { method: 'POST', withCsrf: false });
    expect([noToken.status, (await noToken.json()).error.code]).toEqual([403, 'csrf']);
    const wrong = await web(`${q(id)}/release`, { cookie: root.cookie, csrf: 'x'.repeat(43) }, { method: 'POST' });
    expect(wrong.status).toBe(403);
    // Another session's token is not this session's.
    const other = await login('root', PW.root);
    expect((await web(`${q(id)}/release`, { cookie: root.cookie, csrf: other.csrf }, { method: 'POST' })).status).toBe(403);
    expect((await p.app.quarantine.get(id))!.status).toBe('held');
    // Reads need none.
    expect((await web('/api/v1/quarantine/', root, { withCsrf: false })).status).toBe(200);
    const ok = await web(`${q(id)}/release`, root, { method: 'POST' });
    expect(ok.status).toBe(200);
    expect((await ok.json()).entry).toMatchObject({ status: 'released', acted_by: 'admin:root' });
  });

  it('lets an auditor read everything and change nothing', async () => {
    const a = await login('audrey', PW.audrey);
    const list = await (await web('/api/v1/quarantine/?status=any', a)).json();
    expect(list.total).toBe(3);
    expect((await web(q(ids.bob1), a)).status).toBe(200);
    const rel = await web(`${q(ids.bob1)}/release`, a, { method: 'POST' });
    expect([rel.status, (await rel.json()).error.code]).toEqual([403, 'forbidden']);
    expect((await web(`${q(ids.bob1)}/delete`, a, { method: 'POST' })).status).toBe(403);
    expect((await web(`${q(ids.bob1)}/block`, a, { method: 'POST', json: { scope: 'user' } })).status).toBe(403);
    expect((await web('/api/v1/clusters/', a)).status).toBe(200);
    expect((await web('/api/v1/clusters/1/mark', a, { method: 'POST', json: { verdict: 'safe' } })).status).toBe(403);
    expect((await p.app.quarantine.get(ids.bob1))!.status).toBe('held');
  });

  it('never shows a user another user\'s quarantine: not in lists, not by id, not through actions', async () => {
    const ann = await login('ann', PW.ann);
    const bob = await login('bob', PW.bob);
    const subjects = async (who: Who, query = '') => (await (await web(`/api/v1/quarantine/?status=any${query}`, who)).json()).items.map((i: { subject: string }) => i.subject).sort();
    expect(await subjects(ann)).toEqual(['For Ann one', 'For Ann two']);
    expect(await subjects(bob)).toEqual(['For Bob only']);
    // Asking for the other's mail by filter finds nothing.
    expect(await subjects(ann, '&rcpt=bob@example.net')).toEqual([]);
    expect(await subjects(ann, '&domain=example.net')).toEqual([]);
    expect(await subjects(bob, '&sender=eve@spam.example')).toEqual(['For Bob only']);
    // By id: 404 exactly like an id that does not exist, for reads and for every action.
    const missing = await (await web(q('no-such-id'), ann)).json();
    for (const [method, suffix, json] of [
      ['GET', '', undefined],
      ['GET', '/raw', undefined],
      ['POST', '/release', undefined],
      ['POST', '/delete', undefined],
      ['POST', '/allow', { scope: 'user' }],
      ['POST', '/report', { class: 'ham' }],
    ] as const) {
      const r = await web(`${q(ids.bob1)}${suffix}`, ann, { method, json });
      expect([method, suffix, r.status]).toEqual([method, suffix, 404]);
      expect((await r.json()).error).toEqual({ code: 'not_found', message: missing.error.message.replace('no-such-id', ids.bob1) });
    }
    expect((await p.app.quarantine.get(ids.bob1))!.status).toBe('held');
    // Its own: readable, and it acts on it as itself; lists for itself only.
    expect(await (await web(q(ids.ann1), ann)).json()).toMatchObject({ id: ids.ann1, rcpt: 'ann@example.com' });
    const wide = await web(`${q(ids.ann1)}/block`, ann, { method: 'POST', json: { scope: 'domain' } });
    expect([wide.status, (await wide.json()).error.code]).toEqual([403, 'forbidden']);
    expect((await web(`${q(ids.ann1)}/block`, ann, { method: 'POST', json: { scope: 'user' } })).status).toBe(200);
    const del = await web(`${q(ids.ann1)}/delete`, ann, { method: 'POST' });
    expect((await del.json()).entry).toMatchObject({ status: 'deleted', acted_by: 'user:ann' });
    // No clusters for users.
    expect((await web('/api/v1/clusters/', ann)).status).toBe(403);
  });

  it('takes an account token as that account, without CSRF, until it is revoked', async () => {
    const made = await cli('user', 'token', 'bob', '--label', 'mail client', '--ttl-days', '30');
    expect(made.code).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^pst_[\w-]{43}$/);
    const tokenId = /token (tok_[0-9a-f]+) for bob, expires /.exec(made.stderr)![1];
    const bob = { token };
    expect(await (await web('/api/v1/session', bob)).json()).toEqual({ name: 'bob', role: 'user', kind: 'token', addresses: ['bob@example.net'] });
    expect((await (await web('/api/v1/quarantine/', bob)).json()).items.map((i: { id: string }) => i.id)).toEqual([ids.bob1]);
    expect((await web(q(ids.ann2), bob)).status).toBe(404);
    const rep = await web(`${q(ids.bob1)}/report`, bob, { method: 'POST', json: { class: 'spam' } });
    expect(rep.status).toBe(200);
    const listed = JSON.parse((await cli('user', 'list', '--json')).stdout).find((a: { name: string }) => a.name === 'bob');
    expect(listed.tokens).toEqual([expect.objectContaining({ id: tokenId, label: 'mail client', last_used_at: expect.any(Number), expires_at: expect.any(Number) })]);
    expect(JSON.stringify(listed)).not.toContain(token);

    expect(await cli('user', 'revoke', tokenId)).toMatchObject({ code: 0, stdout: `token ${tokenId} of bob revoked\n` });
    const gone = await web('/api/v1/quarantine/', bob);
    expect([gone.status, (await gone.json()).error.code]).toEqual([401, 'unauthorized']);
    expect((await cli('user', 'revoke', tokenId)).code).toBe(1);
  });

  it('signs in and out through the form; logout needs the CSRF field and ends the session', async () => {
    const form = await web('/login?next=/api/v1/session');
    const page = await form.text();
    expect(form.status).toBe(200);
    expect(page).toContain('<form class="login" method="post" action="/login">');
    expect(page).toContain('name="next" value="/api/v1/session"');
    const post = (body: Record<string, string>, cookie?: string) =>
      web('/login', { cookie }, { method: 'POST', body: new URLSearchParams(body).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

    const wrong = await post({ name: 'ann', password: 'not it at all' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('wrong name or password');
    const off = await post({ name: 'ann', password: PW.ann, next: '//evil.example/' });
    expect([off.status, off.headers.get('location')]).toEqual([303, '/login']);
    const res = await post({ name: 'ann', password: PW.ann, next: '/api/v1/session' });
    expect([res.status, res.headers.get('location')]).toEqual([303, '/api/v1/session']);
    const cookie = sessionCookie(res)!.split(';')[0];
    const me = await (await web('/api/v1/session', { cookie })).json();
    expect(me).toMatchObject({ name: 'ann', kind: 'session' });
    const signedIn = await (await web('/login', { cookie })).text();
    expect(signedIn).toContain('Signed in as ann');
    expect(signedIn).toContain(`name="_csrf" value="${me.csrf}"`);

    const noCsrf = await web('/logout', { cookie }, { method: 'POST', body: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(noCsrf.status).toBe(403);
    expect((await web('/api/v1/session', { cookie })).status).toBe(200);
    const out = await web('/logout', { cookie }, { method: 'POST', body: `_csrf=${encodeURIComponent(me.csrf)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie().some((c) => /^postern_session=;/.test(c))).toBe(true);
    // The old cookie value is dead on the server too, not only cleared in the browser.
    expect((await web('/api/v1/session', { cookie })).status).toBe(401);

    // The JSON way out, and a removed account's session ends at once.
    const root = await login('root', PW.root);
    expect(await (await web('/api/v1/session', root, { method: 'DELETE' })).json()).toEqual({ ended: true });
    expect((await web('/api/v1/session', root)).status).toBe(401);
    const b = await login('bob', PW.bob);
    expect((await cli('user', 'remove', 'bob')).code).toBe(0);
    expect((await web('/api/v1/session', b)).status).toBe(401);
  });

  it('refuses a sign-in posted from another site', async () => {
    const fromElsewhere = { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams({ name: 'root', password: PW.root }).toString();
    for (const where of ['/login', '/api/v1/session']) {
      const r = await web(where, {}, { method: 'POST', body, headers: fromElsewhere });
      expect([where, r.status, sessionCookie(r)]).toEqual([where, 403, undefined]);
    }
    const r = await web('/api/v1/session', {}, { method: 'POST', json: { name: 'root', password: PW.root }, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(r.status).toBe(403);
  });

  it('answers 429 with Retry-After after five wrong passwords, records every attempt, never the password', async () => {
    for (let i = 0; i < 5; i++) expect((await login('audrey', `guess number ${i}`)).res.status).toBe(401);
    const sixth = await login('audrey', 'guess number 5');
    expect(sixth.res.status).toBe(429);
    expect(Number(sixth.res.headers.get('retry-after'))).toBeGreaterThan(200);
    expect(sixth.body.error.code).toBe('rate_limited');
    // The right password waits too: the limit is on the name, not on the guesses.
    expect((await login('audrey', PW.audrey)).res.status).toBe(429);
    // Another name from the same address is not held up by audrey's failures.
    expect((await login('root', PW.root)).res.status).toBe(200);

    await p.app.sink.flush();
    const rows = await p.app.store.db.selectFrom('events').select(['type', 'ip', 'data']).where('type', 'in', ['web.login', 'web.login_failed']).orderBy('id').execute();
    const failed = rows.filter((r) => r.type === 'web.login_failed').map((r) => JSON.parse(r.data));
    expect(failed.filter((d) => d.name === 'audrey').map((d) => d.reason)).toEqual(['password', 'password', 'password', 'password', 'password', 'rate_limited', 'rate_limited']);
    expect(failed.find((d) => d.name === 'nobody')).toMatchObject({ reason: 'unknown', via: 'api', ip: '127.0.0.1' });
    expect(rows.filter((r) => r.type === 'web.login').map((r) => JSON.parse(r.data).name)).toContain('audrey');
    expect(rows.every((r) => r.ip === '127.0.0.1')).toBe(true);
    const all = JSON.stringify(rows);
    for (const pw of [...Object.values(PW), 'guess number', 'wrong password!']) expect(all).not.toContain(pw);
  });

  it('lets the shell disable the last admin (the way back in), and says what that leaves', async () => {
    const off = await cli('user', 'disable', 'root');
    expect(off.code).toBe(0);
    expect(off.stderr).toMatch(/^warning: no enabled admin account is left; .*postern user add NAME --role admin/m);
    const on = await cli('user', 'enable', 'root');
    expect(on.code).toBe(0);
    expect(on.stderr).toBe('');
    // With another admin, nothing to warn about.
    expect((await cli('user', 'add', 'second', '--role', 'admin', '--password-file', pwFile('second admin password'))).code).toBe(0);
    const again = await cli('user', 'disable', 'root');
    expect(again.stderr).toBe('');
    expect((await cli('user', 'enable', 'root')).code).toBe(0);
    expect((await cli('user', 'remove', 'second')).stderr).toBe('');
  });
});

// Nothing here depends on the store: run once, on SQLite.
describe.skipIf(skip || TEST_STORE === 'postgres')('center accounts behind https', () => {
  it('marks the session cookie Secure when web.public_url is https', async () => {
    const h = await startTestPostern('[web]\npublic_url = "https://center.example.com"\n', { store: 'sqlite' });
    try {
      await createAccount(h.app.store.db, { name: 'root', role: 'admin', password: PW.root });
      const r = await fetch(`http://127.0.0.1:${h.app.web!.port}/api/v1/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'root', password: PW.root }),
      });
      expect(r.status).toBe(200);
      expect(sessionCookie(r)).toMatch(/; Secure/);
    } finally {
      await h.close();
    }
  });
});
