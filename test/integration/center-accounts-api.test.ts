// The accounts API of the center over real HTTP to a running Postern: admins add, list, change, disable and remove
// accounts, set passwords and make and revoke tokens; the last enabled admin and one's own account are kept; a
// disabled account's sessions end at once; every account changes its own password with the current one; each change
// is an event that never carries a password or a token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../harness/postern.ts';
import { createAccount } from '../../src/center/auth/accounts.ts';
import { webRequest, type Res, type WebInit, type Who } from '../harness/web.ts';

const API_TOKEN = 'center-accounts-api-config-token-0123456789';
const PW = { root: 'root password for accounts', audrey: 'audrey password 2', ulla: 'ulla password 33', ops: 'ops password 444' };

let p: TestPostern;

/** A response whose JSON body the assertions read freely. */

const admin: Who = { token: API_TOKEN };

const web = (pathname: string, who: Who = {}, init: WebInit = {}): Promise<Res> => webRequest(p.webUrl, pathname, who, init);

async function call(method: string, pathname: string, who: Who, json?: unknown): Promise<{ status: number; body: any }> {
  const r = await web(pathname, who, { method, json });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

async function login(name: string, password: string): Promise<Who & { status: number }> {
  const res = await web('/api/v1/session', {}, { method: 'POST', json: { name, password } });
  const body = await res.json();
  const set = res.headers.getSetCookie().find((c) => c.startsWith('postern_session='));
  return { status: res.status, cookie: set?.split(';')[0], csrf: body.csrf };
}

const names = async (query = '') => (await call('GET', `/api/v1/accounts${query}`, admin)).body.items.map((a: { name: string }) => a.name);

async function accountEvents(): Promise<Record<string, any>[]> {
  await p.app.sink.flush();
  const rows = await p.app.store.db.selectFrom('events').select(['type', 'data']).where('type', 'in', ['web.account_changed', 'web.password_change_failed']).orderBy('id').execute();
  return rows.map((r) => ({ type: r.type, ...JSON.parse(r.data) }));
}

beforeAll(async () => {
  process.env.POSTERN_TEST_ACCOUNTS_TOKEN = API_TOKEN;
  p = await startTestPostern(`[web]\napi_token = { env = "POSTERN_TEST_ACCOUNTS_TOKEN" }\n`);
  await createAccount(p.app.store.db, { name: 'root', role: 'admin', password: PW.root });
});
afterAll(async () => {
  await p?.close();
});

describe('the accounts API', () => {
  it('adds, lists with filters and pages, changes and removes accounts', async () => {
    const root = await login('root', PW.root);
    expect(root.status).toBe(200);
    const made = await call('POST', '/api/v1/accounts', root, { name: 'Audrey', role: 'auditor', password: PW.audrey });
    expect(made).toMatchObject({ status: 201, body: { name: 'audrey', role: 'auditor', addresses: [], disabled: false, tokens: 0 } });
    const ulla = await call('POST', '/api/v1/accounts', admin, { name: 'ulla', role: 'user', password: PW.ulla, addresses: ['Ulla@Example.org'] });
    expect(ulla.body).toMatchObject({ name: 'ulla', role: 'user', addresses: ['ulla@example.org'] });
    expect(JSON.stringify(ulla.body)).not.toContain('argon2');

    expect(await names()).toEqual(['audrey', 'root', 'ulla']);
    expect(await names('?role=user')).toEqual(['ulla']);
    expect(await names('?disabled=true')).toEqual([]);
    const first = await call('GET', '/api/v1/accounts?limit=2', admin);
    expect(first.body.items.map((a: any) => a.name)).toEqual(['audrey', 'root']);
    expect(first.body.items[1]).toMatchObject({ role: 'admin', tokens: 0, sessions: 1, created_at: expect.any(Number) });
    const second = await call('GET', `/api/v1/accounts?limit=2&cursor=${first.body.next_cursor}`, admin);
    expect([second.body.items.map((a: any) => a.name), second.body.next_cursor]).toEqual([['ulla'], null]);

    const changed = await call('PATCH', '/api/v1/accounts/ulla', root, { addresses: ['ulla@example.org', 'u.lla@example.org'] });
    expect(changed).toMatchObject({ status: 200, body: { name: 'ulla', addresses: ['ulla@example.org', 'u.lla@example.org'], role: 'user' } });
    const promoted = await call('PATCH', '/api/v1/accounts/ulla', root, { role: 'auditor', addresses: ['*@example.org'] });
    expect(promoted.body).toMatchObject({ role: 'auditor', addresses: ['*@example.org'] });
    // Back to user keeps the *@domain only if it is allowed for a user: it is not.
    const back = await call('PATCH', '/api/v1/accounts/ulla', root, { role: 'user' });
    expect([back.status, back.body.error.code, back.body.error.message]).toEqual([400, 'bad_request', expect.stringContaining('a user account has single addresses')]);
    expect((await call('PATCH', '/api/v1/accounts/ulla', root, { role: 'user', addresses: ['ulla@example.org'] })).status).toBe(200);

    expect(await call('GET', '/api/v1/accounts/ULLA', admin)).toMatchObject({ status: 200, body: { name: 'ulla', role: 'user' } });
    expect((await call('DELETE', '/api/v1/accounts/ulla', root)).body).toEqual({ removed: 'ulla' });
    expect((await call('GET', '/api/v1/accounts/ulla', admin)).status).toBe(404);
    expect(await call('DELETE', '/api/v1/accounts/ulla', root)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await names()).toEqual(['audrey', 'root']);
  });

  it('refuses bad payloads with 400 naming the field, a taken name with 409, a session change without CSRF with 403', async () => {
    const root = await login('root', PW.root);
    const bad = async (method: string, path: string, json: unknown, field: RegExp) => {
      const r = await call(method, path, root, json);
      expect([method, path, r.status, r.body.error.code]).toEqual([method, path, 400, 'bad_request']);
      expect(r.body.error.message).toMatch(field);
    };
    await bad('POST', '/api/v1/accounts', { name: 'carl', role: 'boss', password: 'long enough pw' }, /^body role:/);
    await bad('POST', '/api/v1/accounts', { name: 'carl', role: 'user', password: 'short' }, /^body password: a password needs at least 10 characters/);
    await bad('POST', '/api/v1/accounts', { name: 'carl', role: 'user', password: 'long enough pw', admin: true }, /^body admin:/);
    await bad('POST', '/api/v1/accounts', { name: 'bad name!', role: 'user', password: 'long enough pw' }, /account name/);
    await bad('POST', '/api/v1/accounts', { name: 'carl', role: 'user', password: 'long enough pw', addresses: ['*@example.org'] }, /single addresses/);
    await bad('POST', '/api/v1/accounts', { name: 'carl', role: 'user', password: 'long enough pw', addresses: 'carl@example.org' }, /^body addresses:/);
    await bad('PATCH', '/api/v1/accounts/audrey', {}, /nothing to change/);
    await bad('PATCH', '/api/v1/accounts/audrey', { disabled: 'yes' }, /^body disabled:/);
    await bad('POST', '/api/v1/accounts/audrey/password', { password: 'short' }, /at least 10 characters/);
    await bad('POST', '/api/v1/accounts/audrey/tokens', { ttl_days: 0 }, /^body ttl_days:/);
    await bad('GET', '/api/v1/accounts?role=boss', undefined, /^query role:/);
    await bad('GET', '/api/v1/accounts?cursor=nonsense', undefined, /^query cursor:/);
    await bad('DELETE', '/api/v1/accounts/audrey/tokens/12', undefined, /^path id:/);
    const notJson = await web('/api/v1/accounts', root, { method: 'POST', body: '{"name":', headers: { 'content-type': 'application/json' } });
    expect([notJson.status, (await notJson.json()).error.code]).toEqual([400, 'bad_request']);
    expect(await call('POST', '/api/v1/accounts', root, { name: 'AUDREY', role: 'user', password: 'long enough pw' })).toMatchObject({ status: 409, body: { error: { code: 'exists' } } });
    expect((await call('PATCH', '/api/v1/accounts/nobody', root, { disabled: true })).status).toBe(404);

    const noCsrf = await web('/api/v1/accounts', root, { method: 'POST', json: { name: 'carl', role: 'user', password: 'long enough pw' }, withCsrf: false });
    expect([noCsrf.status, (await noCsrf.json()).error.code]).toEqual([403, 'csrf']);
    expect((await web('/api/v1/accounts/audrey', root, { method: 'DELETE', withCsrf: false })).status).toBe(403);
    expect(await names()).toEqual(['audrey', 'root']);
  });

  it('is for admins: an auditor or a user gets 403 for every route, no credentials 401', async () => {
    await call('POST', '/api/v1/accounts', admin, { name: 'ulla', role: 'user', password: PW.ulla, addresses: ['ulla@example.org'] });
    const audrey = await login('audrey', PW.audrey);
    const ulla = await login('ulla', PW.ulla);
    for (const who of [audrey, ulla]) {
      for (const [method, path, json] of [
        ['GET', '/api/v1/accounts', undefined],
        ['GET', '/api/v1/accounts/root', undefined],
        ['POST', '/api/v1/accounts', { name: 'mallory', role: 'admin', password: 'long enough pw' }],
        ['PATCH', '/api/v1/accounts/root', { disabled: true }],
        ['DELETE', '/api/v1/accounts/root', undefined],
        ['POST', '/api/v1/accounts/root/password', { password: 'taken over now' }],
        ['GET', '/api/v1/accounts/root/tokens', undefined],
        ['POST', '/api/v1/accounts/audrey/tokens', {}],
      ] as const) {
        const r = await call(method, path, who, json);
        expect([method, path, r.status, r.body.error.code]).toEqual([method, path, 403, 'forbidden']);
      }
    }
    expect((await call('GET', '/api/v1/accounts', {})).status).toBe(401);
    expect(await names()).toEqual(['audrey', 'root', 'ulla']);
    expect((await login('root', PW.root)).status).toBe(200);
  });

  it('keeps the last enabled admin, and refuses to remove, disable or demote your own account', async () => {
    const root = await login('root', PW.root);
    // The configured token is an admin but no account: root is the only admin account.
    for (const [method, json] of [
      ['DELETE', undefined],
      ['PATCH', { disabled: true }],
      ['PATCH', { role: 'auditor' }],
    ] as const) {
      const r = await call(method, '/api/v1/accounts/root', admin, json);
      expect([method, r.status, r.body.error.code]).toEqual([method, 409, 'last_admin']);
      expect(r.body.error.message).toBe(`root is the last enabled admin: add or enable another admin before you ${method === 'DELETE' ? 'remove' : json!.disabled ? 'disable' : 'demote'} it`);
    }
    // Signed in as root: its own account, whatever other admins there are.
    expect((await call('POST', '/api/v1/accounts', root, { name: 'ops', role: 'admin', password: PW.ops })).status).toBe(201);
    for (const [method, json] of [
      ['DELETE', undefined],
      ['PATCH', { disabled: true }],
      ['PATCH', { role: 'user' }],
    ] as const) {
      const r = await call(method, '/api/v1/accounts/root', root, json);
      expect([method, r.status, r.body.error.code]).toEqual([method, 409, 'self']);
    }
    // Its own addresses it may change.
    expect((await call('PATCH', '/api/v1/accounts/root', root, { addresses: ['root@example.org'] })).status).toBe(200);
    // With ops enabled, the API may demote root; then ops is the last and is kept.
    expect((await call('PATCH', '/api/v1/accounts/ops', root, { disabled: true })).body).toMatchObject({ disabled: true });
    expect((await call('PATCH', '/api/v1/accounts/root', admin, { role: 'auditor' })).body.error.code).toBe('last_admin');
    expect((await call('PATCH', '/api/v1/accounts/ops', admin, { disabled: false })).body).toMatchObject({ disabled: false });
    expect((await call('PATCH', '/api/v1/accounts/root', admin, { role: 'auditor' })).body).toMatchObject({ role: 'auditor' });
    expect((await call('DELETE', '/api/v1/accounts/ops', admin)).body.error.code).toBe('last_admin');
    expect((await call('PATCH', '/api/v1/accounts/root', admin, { role: 'admin' })).body).toMatchObject({ role: 'admin' });
    expect((await call('DELETE', '/api/v1/accounts/ops', root)).body).toEqual({ removed: 'ops' });
    const roles = await p.app.store.db.selectFrom('accounts').select(['name', 'role', 'disabled']).where('role', '=', 'admin').execute();
    expect(roles).toEqual([{ name: 'root', role: 'admin', disabled: 0 }]);
  });

  it('ends the sessions of an account it disables: the old cookie gets 401; enabled, it signs in again', async () => {
    const root = await login('root', PW.root);
    const audrey = await login('audrey', PW.audrey);
    const other = await login('audrey', PW.audrey);
    expect((await web('/api/v1/session', audrey)).status).toBe(200);
    const off = await call('PATCH', '/api/v1/accounts/audrey', root, { disabled: true });
    expect(off).toMatchObject({ status: 200, body: { disabled: true, sessions: 0 } });
    // These two and the one of the test before.
    expect(off.body.sessions_ended).toBe(3);
    for (const who of [audrey, other]) expect((await web('/api/v1/session', who)).status).toBe(401);
    expect((await login('audrey', PW.audrey)).status).toBe(401);
    expect(await names('?disabled=true')).toEqual(['audrey']);
    expect((await call('PATCH', '/api/v1/accounts/audrey', root, { disabled: false })).body).toMatchObject({ disabled: false });
    const again = await login('audrey', PW.audrey);
    expect((await web('/api/v1/session', again)).status).toBe(200);
  });

  it('makes a token that works as a Bearer token, lists it without its secret, and revokes it', async () => {
    const root = await login('root', PW.root);
    const made = await call('POST', '/api/v1/accounts/audrey/tokens', root, { label: 'reports script', ttl_days: 30 });
    expect(made).toMatchObject({ status: 201, body: { token: expect.stringMatching(/^pst_[\w-]{43}$/), id: expect.stringMatching(/^tok_[0-9a-f]{12}$/), account: 'audrey', label: 'reports script', expires_at: expect.any(Number) } });
    const { token, id } = made.body;
    expect(await (await web('/api/v1/session', { token })).json()).toMatchObject({ name: 'audrey', role: 'auditor', kind: 'token' });
    expect((await web('/api/v1/messages', { token })).status).toBe(200);

    const list = await call('GET', '/api/v1/accounts/audrey/tokens', root);
    expect(list.body.items).toEqual([expect.objectContaining({ id, label: 'reports script', last_used_at: expect.any(Number) })]);
    expect(JSON.stringify(list.body)).not.toContain(token);
    expect((await call('GET', '/api/v1/accounts/audrey', root)).body.tokens).toBe(1);
    // The token is audrey's: revoking it under another account's name is not found.
    expect((await call('DELETE', `/api/v1/accounts/root/tokens/${id}`, root)).status).toBe(404);

    expect(await call('DELETE', `/api/v1/accounts/audrey/tokens/${id}`, root)).toMatchObject({ status: 200, body: { revoked: { id, account: 'audrey' } } });
    const gone = await web('/api/v1/session', { token });
    expect([gone.status, (await gone.json()).error.code]).toEqual([401, 'unauthorized']);
    expect((await call('DELETE', `/api/v1/accounts/audrey/tokens/${id}`, root)).status).toBe(404);
  });

  it('sets a password as an admin, ending that account\'s sessions', async () => {
    const root = await login('root', PW.root);
    const ulla = await login('ulla', PW.ulla);
    const r = await call('POST', '/api/v1/accounts/ulla/password', root, { password: 'ulla new password 1' });
    // This one and the one of an earlier test.
    expect(r).toMatchObject({ status: 200, body: { name: 'ulla', sessions_ended: 2 } });
    expect((await web('/api/v1/session', ulla)).status).toBe(401);
    expect((await login('ulla', PW.ulla)).status).toBe(401);
    expect((await login('ulla', 'ulla new password 1')).status).toBe(200);
    PW.ulla = 'ulla new password 1';
  });

  it('lets every account change its own password with the right current one, keeping this session only', async () => {
    const ulla = await login('ulla', PW.ulla);
    const elsewhere = await login('ulla', PW.ulla);
    const wrong = await call('POST', '/api/v1/me/password', ulla, { current_password: 'not the password', new_password: 'ulla third password' });
    expect([wrong.status, wrong.body.error.code]).toEqual([403, 'wrong_password']);
    expect((await call('POST', '/api/v1/me/password', ulla, { current_password: PW.ulla, new_password: 'short' })).status).toBe(400);
    expect((await call('POST', '/api/v1/me/password', ulla, { current_password: PW.ulla, new_password: PW.ulla })).body.error.message).toMatch(/the same as the current one/);
    expect((await call('POST', '/api/v1/me/password', ulla, { new_password: 'ulla third password' })).body.error.message).toMatch(/^body current_password:/);
    const noCsrf = await web('/api/v1/me/password', ulla, { method: 'POST', json: { current_password: PW.ulla, new_password: 'ulla third password' }, withCsrf: false });
    expect(noCsrf.status).toBe(403);
    expect((await login('ulla', PW.ulla)).status).toBe(200);

    const ok = await call('POST', '/api/v1/me/password', ulla, { current_password: PW.ulla, new_password: 'ulla third password' });
    expect(ok).toMatchObject({ status: 200, body: { name: 'ulla' } });
    expect(ok.body.sessions_ended).toBeGreaterThanOrEqual(2);
    expect((await web('/api/v1/session', ulla)).status).toBe(200);
    expect((await web('/api/v1/session', elsewhere)).status).toBe(401);
    expect((await login('ulla', PW.ulla)).status).toBe(401);
    expect((await login('ulla', 'ulla third password')).status).toBe(200);

    // The configured token has no account and so no password.
    const api = await call('POST', '/api/v1/me/password', admin, { current_password: API_TOKEN, new_password: 'anything long enough' });
    expect([api.status, api.body.error.code]).toEqual([403, 'forbidden']);
    // Five wrong current passwords, then 429 with Retry-After, even with the right one.
    const audrey = await login('audrey', PW.audrey);
    for (let i = 0; i < 5; i++) expect((await call('POST', '/api/v1/me/password', audrey, { current_password: `guess ${i} at it`, new_password: 'audrey new password' })).status).toBe(403);
    const held = await web('/api/v1/me/password', audrey, { method: 'POST', json: { current_password: PW.audrey, new_password: 'audrey new password' } });
    expect([held.status, (await held.json()).error.code]).toEqual([429, 'rate_limited']);
    expect(Number(held.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('records every change as an event naming who did it, never with a password or a token', async () => {
    const ev = await accountEvents();
    const ops = ev.filter((e) => e.type === 'web.account_changed').map((e) => `${e.op} ${e.account} by ${e.by}`);
    expect(ops).toEqual(
      expect.arrayContaining([
        'added audrey by admin:root',
        'added ulla by api',
        'changed ulla by admin:root',
        'removed ulla by admin:root',
        'disabled audrey by admin:root',
        'enabled audrey by admin:root',
        'token_created audrey by admin:root',
        'token_revoked audrey by admin:root',
        'password ulla by admin:root',
        'password ulla by user:ulla',
      ]),
    );
    expect(ev.find((e) => e.op === 'disabled' && e.account === 'audrey')).toMatchObject({ disabled: true, sessions_ended: 3 });
    expect(ev.find((e) => e.op === 'password' && e.by === 'user:ulla')).toMatchObject({ own: true });
    expect(ev.filter((e) => e.type === 'web.password_change_failed').map((e) => `${e.name} ${e.reason}`)).toEqual([
      'ulla password',
      ...Array(5).fill('audrey password'),
      'audrey rate_limited',
    ]);
    const all = JSON.stringify(ev);
    for (const secret of [...Object.values(PW), 'ulla new password 1', 'ulla third password', 'pst_', 'argon2']) expect(all).not.toContain(secret);
  });
});
