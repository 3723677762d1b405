// Audit switched on through the center, mailbox activity and alerts over real HTTP to a running Postern, with logins
// fed through the webmail collector: a user an admin adds is audited from its next login and not after its removal,
// the config's patterns cannot be removed, an auditor cannot change the list, `postern audit users` edits the same
// table, a user's page shows its logins, failures, the brute-force block on the guessing address and its audit trail,
// and the alerts list the finding. Then the IMAP proxy in front of a real Dovecot: audit switched on through the API
// applies to the next login, and a pattern the CLI writes is read by the running proxy within its 5 s re-read.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { closedAfterEach, dovecotForSuite, storedEvents } from '../harness/proxy-suite.ts';
import { inProcess } from '../harness/cli.ts';
import { missing } from '../harness/services.ts';
import { RawImap } from '../harness/imap-client.ts';
import { WEBMAIL_PATH } from '../../src/monitor/collector/webmail.ts';
import { auditPattern } from '../../src/monitor/audit/users.ts';

const KEY = 'wm-key-mailboxes-3f1a';
const TOKEN = 'api-token-mailboxes-77c2';
const CEO = 'ceo@example.org';
const BOB = 'bob@example.org';
const GUESSER = '198.51.100.66';

let p: TestPostern;
let cliConfig: string;
let auditor: string;
const cli = (...args: string[]) => inProcess([...args, '--config', cliConfig]);

async function api(method: string, url: string, body?: unknown, token = TOKEN): Promise<{ status: number; json: any }> {
  const res = await fetch(`${p.webUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function webmail(events: unknown[]): Promise<any> {
  const res = await fetch(`${p.webUrl}${WEBMAIL_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(events) });
  expect(res.status).toBe(200);
  return res.json();
}

/** A webmail login of `user` with one message read: an audited session leaves a login and a READ. */
const session = (user: string, id: string, ip = '192.0.2.7') =>
  webmail([
    { type: 'login', user, client_ip: ip, session: id },
    { type: 'read', user, client_ip: ip, session: id, folder: 'INBOX', uid: 7 },
  ]);

async function auditedSessions(user: string): Promise<string[]> {
  const events = [...(await storedEvents(p, 'audit.session')), ...(await storedEvents(p, 'audit.command'))];
  return [...new Set(events.filter((e) => e.data.user === user).map((e) => String(e.data.session)))].sort();
}

beforeAll(async () => {
  p = await startTestPostern(
    `[web]\napi_token = "${TOKEN}"\n[monitor.webmail]\nenabled = true\nkeys = [{ name = "roundcube", key = "${KEY}" }]\n[monitor.audit]\nusers = ["${CEO}"]\n[trends]\npoll_ms = 50\n`,
    { store: 'sqlite' },
  );
  cliConfig = path.join(p.dir, 'cli.toml');
  fs.writeFileSync(cliConfig, `data_dir = ${JSON.stringify(p.dir)}\n[monitor.audit]\nusers = ["${CEO}"]\n`);
  const pw = path.join(p.dir, 'pw-auditor');
  fs.writeFileSync(pw, 'auditor password 5\n', { mode: 0o600 });
  expect((await cli('user', 'add', 'audrey', '--role', 'auditor', '--password-file', pw)).code).toBe(0);
  const made = await cli('user', 'token', 'audrey');
  expect(made.code, made.stderr).toBe(0);
  auditor = made.stdout.trim();
});
afterAll(async () => {
  await p?.close();
});

describe('audited users through the center', () => {
  it('checks patterns: an address, *@domain or *, lower-cased', () => {
    expect(auditPattern(' Bob@Example.ORG ')).toBe(BOB);
    expect(auditPattern('*@Board.example.org')).toBe('*@board.example.org');
    expect(auditPattern('*')).toBe('*');
    for (const bad of ['', 'bob', '@example.org', 'bob@', 'a b@example.org', 'bob@exa mple.org', '*bob@example.org', 'bob@*.org']) expect(() => auditPattern(bad), bad).toThrow();
  });

  it('audits a user an admin adds from its next login, and not after its removal; the config\'s patterns stay', async () => {
    expect(await api('GET', '/api/v1/audit/users')).toEqual({ status: 200, json: { items: [{ pattern: CEO, source: 'config', added_by: null, added_at: null }] } });
    await session(BOB, 'wm-1');
    expect(await auditedSessions(BOB)).toEqual([]);

    const added = await api('POST', '/api/v1/audit/users', { pattern: 'Bob@Example.org' });
    expect(added).toMatchObject({ status: 201, json: { pattern: BOB, source: 'store', added_by: 'api', added_at: expect.any(Number) } });
    expect((await api('POST', '/api/v1/audit/users', { pattern: BOB })).status).toBe(200);
    expect(await api('POST', '/api/v1/audit/users', { pattern: 'bob' })).toMatchObject({ status: 400, json: { error: { code: 'bad_request', message: 'body pattern: "bob" is neither an address, *@domain nor *' } } });
    expect((await api('POST', '/api/v1/audit/users', { pattern: CEO })).status).toBe(409);
    expect((await api('GET', '/api/v1/audit/users')).json.items.map((u: { pattern: string; source: string }) => `${u.source}:${u.pattern}`)).toEqual([`config:${CEO}`, `store:${BOB}`]);

    await session(BOB, 'wm-2');
    expect(await auditedSessions(BOB)).toEqual(['wm-2']);
    const trail = await api('GET', `/api/v1/audit?user=${BOB}`);
    expect(trail.json.events.map((e: { text: string }) => e.text)).toEqual(['webmail login from 192.0.2.7', 'READ UID 7 in INBOX']);

    // The config's pattern is removed in the config only.
    const conf = await api('DELETE', `/api/v1/audit/users/${encodeURIComponent(CEO)}`);
    expect(conf).toMatchObject({ status: 409, json: { error: { message: expect.stringContaining('monitor.audit.users in the config file') } } });
    expect(await api('DELETE', `/api/v1/audit/users/${encodeURIComponent(BOB)}`)).toEqual({ status: 200, json: { removed: BOB } });
    expect((await api('DELETE', `/api/v1/audit/users/${encodeURIComponent(BOB)}`)).status).toBe(404);
    await session(BOB, 'wm-3');
    expect(await auditedSessions(BOB)).toEqual(['wm-2']);
    await session(CEO, 'wm-4');
    expect(await auditedSessions(CEO)).toEqual(['wm-4']);

    expect((await storedEvents(p, 'audit.user_added')).map((e) => e.data)).toEqual([{ pattern: BOB, by: 'api' }]);
    expect((await storedEvents(p, 'audit.user_removed')).map((e) => e.data)).toEqual([{ pattern: BOB, by: 'api' }]);
  });

  it('lets an auditor read the list, not change it', async () => {
    expect((await api('GET', '/api/v1/audit/users', undefined, auditor)).status).toBe(200);
    expect(await api('POST', '/api/v1/audit/users', { pattern: BOB }, auditor)).toMatchObject({ status: 403, json: { error: { code: 'forbidden' } } });
    expect((await api('DELETE', `/api/v1/audit/users/${encodeURIComponent(CEO)}`, undefined, auditor)).status).toBe(403);
    expect((await api('GET', '/api/v1/audit/users', undefined, 'wrong')).status).toBe(401);
  });

  it('postern audit users edits the same list, and postern audit USER still prints a trail', async () => {
    expect(await cli('audit', 'users', 'add', '*@Board.example.org')).toMatchObject({ code: 0, stdout: expect.stringContaining('*@board.example.org is audited from its next login') });
    const list = await cli('audit', 'users', 'list', '--json');
    expect(JSON.parse(list.stdout).items.map((u: { pattern: string; source: string }) => `${u.source}:${u.pattern}`)).toEqual([`config:${CEO}`, 'store:*@board.example.org']);
    expect(JSON.parse(list.stdout).items[1].added_by).toMatch(/^cli:/);
    expect((await api('GET', '/api/v1/audit/users')).json.items).toHaveLength(2);
    expect((await cli('audit', 'users', 'remove', CEO)).code).toBe(1);
    expect((await cli('audit', 'users', 'add', 'nobody')).code).toBe(64);
    expect(await cli('audit', 'users', 'remove', '*@board.example.org')).toMatchObject({ code: 0 });
    expect((await storedEvents(p, 'audit.user_added')).map((e) => e.data.pattern)).toEqual([BOB, '*@board.example.org']);
    const trail = await cli('audit', BOB, '--since', '1h');
    expect(trail.code).toBe(0);
    expect(trail.stdout).toMatch(/session wm-2 {2}webmail {2}bob@example\.org/);
  });
});

describe('mailbox activity and alerts', () => {
  it('shows a user\'s logins, failures, the block on the guessing address, and the finding among the alerts', async () => {
    await webmail(Array.from({ length: 12 }, () => ({ type: 'login_failed', user: BOB, client_ip: GUESSER })));
    await until(() => p.app.policies.match({ ip: GUESSER }).find((x) => x.action === 'block'), 15_000, 'the brute-force block');
    // The analyzer's thread writes its finding just after the policy.
    await until(async () => (await storedEvents(p, 'trends.finding')).length > 0, 5_000, 'the finding event');
    // The analyzer folds the successful logins into the known addresses.
    await until(async () => Number((await p.app.store.db.selectFrom('mailbox_logins').select('logins').where('user', '=', BOB).executeTakeFirst())?.logins) === 3, 10_000, 'the known login address');

    const m = await api('GET', `/api/v1/mailboxes/${encodeURIComponent('BOB@example.org')}`, undefined, auditor);
    expect(m.status).toBe(200);
    expect(m.json).toMatchObject({ user: BOB, audited: false, audited_by: [], known_logins: [{ ip: '192.0.2.7', logins: 3 }] });
    const outcomes = m.json.auth.map((e: { ip: string; outcome: string; protocol: string }) => `${e.outcome} ${e.ip} ${e.protocol}`);
    expect(outcomes.filter((o: string) => o === `failed ${GUESSER} webmail`)).toHaveLength(12);
    expect(outcomes.filter((o: string) => o === 'succeeded 192.0.2.7 webmail')).toHaveLength(3);
    // Newest first: the failures came last.
    expect(outcomes[0]).toBe(`failed ${GUESSER} webmail`);
    expect(m.json.attacks.failed_ips).toEqual([GUESSER]);
    expect(m.json.attacks.policies).toEqual([expect.objectContaining({ target_kind: 'ip', target: GUESSER, action: 'block', source: 'analyzer:brute_force', state: 'active' })]);
    expect(m.json.attacks.findings[0]).toMatchObject({ detector: 'brute_force', target: `ip:${GUESSER}`, reason: expect.stringMatching(/^brute force: \d+ failed logins from 198\.51\.100\.66/) });
    // Not audited now; its audited session of before is still shown.
    expect(m.json.audit.sessions.map((s: { session: string; lines: { text: string }[] }) => [s.session, s.lines.map((l) => l.text)])).toEqual([['wm-2', ['webmail login from 192.0.2.7', 'READ UID 7 in INBOX']]]);
    expect((await api('GET', `/api/v1/mailboxes/${CEO}`)).json).toMatchObject({ audited: true, audited_by: [CEO], auth: [{ outcome: 'succeeded', protocol: 'webmail' }] });

    const list = await api('GET', '/api/v1/mailboxes?q=EXAMPLE.org', undefined, auditor);
    expect(list.json.items.map((u: { user: string }) => u.user)).toEqual([BOB, CEO]);
    expect(list.json.items[0]).toMatchObject({ user: BOB, succeeded: 3, failed: 12, last_ip: GUESSER, audited: false });
    const one = await api('GET', '/api/v1/mailboxes?limit=1');
    expect(one.json.items.map((u: { user: string }) => u.user)).toEqual([BOB]);
    expect((await api('GET', `/api/v1/mailboxes?limit=1&cursor=${one.json.next_cursor}`)).json).toMatchObject({ items: [{ user: CEO }], next_cursor: null });

    const alerts = await api('GET', '/api/v1/alerts', undefined, auditor);
    expect(alerts.status).toBe(200);
    const finding = alerts.json.items.find((a: { type: string; data: { created?: boolean } }) => a.type === 'trends.finding' && a.data.created);
    expect(finding).toMatchObject({ severity: 'medium', summary: expect.stringMatching(/^brute force: \d+ failed logins from 198\.51\.100\.66 .*→ block ip 198\.51\.100\.66/), ip: GUESSER });
    expect((await api('GET', '/api/v1/alerts?severity=high')).json.items.filter((a: { type: string }) => a.type === 'trends.finding')).toEqual([]);
    expect((await api('GET', '/api/v1/alerts?severity=urgent')).status).toBe(400);
  }, 30_000);

  it('is for admins and auditors only', async () => {
    expect((await fetch(`${p.webUrl}/api/v1/mailboxes`)).status).toBe(401);
    expect((await fetch(`${p.webUrl}/api/v1/alerts`)).status).toBe(401);
  });
});

describe.skipIf(await missing('dovecot'))('audit switched on for the IMAP proxy', () => {
  const ALICE = 'alice@localhost';
  const ALICE_PW = 'Correct-Horse-7';
  const dovecot = dovecotForSuite({ alice: ALICE_PW });
  const open = closedAfterEach();

  it('audits the next IMAP login of a user added through the API, not after its removal, and follows the CLI within 5 s', async () => {
    const dv = dovecot();
    const q = await startTestPostern(
      `[web]\napi_token = "${TOKEN}"\n[monitor.imap]\nenabled = true\nfailure_delay_ms = 0\n[monitor.imap.upstream]\nhost = "127.0.0.1"\nport = ${dv.imapPort}\n`,
      { store: 'sqlite' },
    );
    open.push(q);
    const call = (method: string, url: string, body?: unknown) =>
      fetch(`${q.webUrl}${url}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined }).then((r) => r.status);
    const logins = async () => (await storedEvents(q, 'audit.session')).filter((e) => e.data.phase === 'login' && e.data.user === ALICE).length;
    /** One IMAP session through the proxy: login, SELECT, logout. */
    const imapSession = async () => {
      const closed = (await storedEvents(q, 'imap.close')).length;
      const { c } = await RawImap.open(q.app.monitor.imap!.port);
      expect(await c.cmd('a1', `LOGIN ${ALICE} ${ALICE_PW}`)).toMatch(/a1 OK/);
      expect(await c.cmd('a2', 'SELECT INBOX')).toMatch(/a2 OK/);
      expect(await c.cmd('a3', 'LOGOUT')).toMatch(/a3 OK/);
      c.close();
      await until(async () => (await storedEvents(q, 'imap.close')).length > closed, 5_000, 'the session closed');
    };
    await imapSession();
    expect(await logins()).toBe(0);
    expect(await call('POST', '/api/v1/audit/users', { pattern: ALICE })).toBe(201);
    await imapSession();
    await until(async () => (await storedEvents(q, 'audit.command')).some((e) => e.data.command === 'SELECT' && e.data.user === ALICE), 5_000, 'the audited SELECT');
    expect(await logins()).toBe(1);
    expect(await call('DELETE', `/api/v1/audit/users/${encodeURIComponent(ALICE)}`)).toBe(200);
    await imapSession();
    expect(await logins()).toBe(1);

    // The CLI writes the table without telling the running Postern: its proxies read it within 5 s.
    const file = path.join(q.dir, 'cli.toml');
    fs.writeFileSync(file, `data_dir = ${JSON.stringify(q.dir)}\n`);
    expect((await inProcess(['audit', 'users', 'add', '*@localhost', '--config', file])).code).toBe(0);
    const t0 = Date.now();
    await until(async () => (await imapSession(), (await logins()) > 1), 8_000, 'the CLI\'s pattern to be read');
    expect(Date.now() - t0).toBeLessThan(7_000);
  }, 20_000);
});
