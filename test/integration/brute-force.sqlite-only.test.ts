// Password attacks on the IMAP proxy in front of a real Dovecot, with the trend analyzer on: each scenario of
// `postern simulate` run in-process through main(), its attackers and the real user on their own loopback
// addresses; the protect policy on its own (known address in, unknown refused without asking Dovecot); the known
// login addresses the analyzer learns, and their retention.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEST_STORE, freshPgSchema, startTestPostern, tempDir, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { closedAfterEach, dovecotForSuite } from '../harness/proxy-suite.ts';
import { inProcess } from '../harness/cli.ts';
import { RawImap } from '../harness/imap-client.ts';
import { validatePolicyInput } from '../../src/policy/admin.ts';
import { purgeKnownLogins } from '../../src/trends/known-logins.ts';
import type { AuthSimReport } from '../../src/monitor/simulate.ts';

const why = await missing('dovecot');

const ALICE = 'alice@localhost';
const ALICE_PW = 'Correct-Horse-7';
const BOB = 'bob@localhost';
const BOB_PW = 'Bob-Secret-9';

interface Running {
  p: TestPostern;
  /** The config file the CLI reads: the same store as the running Postern. */
  file: string;
  imap: number;
}

const open = closedAfterEach();

describe.skipIf(why)('password attacks on the IMAP proxy', () => {
  const dovecot = dovecotForSuite({ alice: ALICE_PW, bob: BOB_PW });

  /**
   * A Postern with the IMAP proxy and the analyzer, and a config file for the CLI that points at its store. The
   * failure delays are short for a quick test (250 ms doubling to 2 s, against 1 s to 15 s by default), yet long
   * enough at the cap for the analyzer to write its policy between two guesses from one address.
   */
  async function postern(): Promise<Running> {
    const dir = tempDir();
    const pgs = TEST_STORE === 'postgres' ? await freshPgSchema() : undefined;
    const store = pgs ? `\n[store]\nurl = ${JSON.stringify(pgs.url)}\n` : '';
    const imap = `[monitor.imap]\nenabled = true\nfailure_delay_ms = 250\nfailure_delay_max_ms = 2000\n[monitor.imap.upstream]\nhost = "127.0.0.1"\nport = ${dovecot().imapPort}\n`;
    const p = await startTestPostern(`${imap}\n[trends]\npoll_ms = 50\n${store}`, { dir, store: 'sqlite' });
    open.push({ close: async () => (await p.close(), await pgs?.drop()) });
    const file = path.join(dir, 'postern.toml');
    fs.writeFileSync(file, `data_dir = ${JSON.stringify(dir)}\n${imap}${store}`);
    return { p, file, imap: p.app.monitor.imap!.port };
  }

  async function simulate(r: Running, scenario: string, ...more: string[]): Promise<{ code: number; report: AuthSimReport & { policy: { id: string; target_kind: string; target: string; action: string; source: string; evidence: Record<string, unknown> } | null } }> {
    const { code, stdout: out, stderr: err } = await inProcess(['simulate', scenario, '--config', r.file, '--host', '127.0.0.1', '--port', String(r.imap), '--user', ALICE, '--password', ALICE_PW, '--json', ...more]);
    expect(err).toBe('');
    return { code, report: JSON.parse(out) };
  }

  it('brute force from one address: stopped within 10 guesses by an address block; the real user never refused', async () => {
    const r = await postern();
    const { code, report } = await simulate(r, 'brute-force', '--attacker-net', '127.0.30', '--legit-net', '127.0.40', '--after', '2');
    expect(code).toBe(0);
    expect(report.stopped).toBe(true);
    expect(report.reached_server_before_stop).toBeLessThanOrEqual(10);
    expect(report.reached_server).toBeLessThanOrEqual(10);
    expect(report.refused_by_postern).toBeGreaterThanOrEqual(2);
    expect(report.policy).toMatchObject({ target_kind: 'ip', target: '127.0.30.66', action: 'block', source: 'analyzer:brute_force' });
    expect(report.legit.logins).toBeGreaterThan(3);
    expect(report.legit).toMatchObject({ failed: 0, errors: 0 });
    expect(report.succeeded).toBe(0);
  }, 60_000);

  it('distributed over a /24 at two guesses per address: stopped within 30 guesses by protecting the account', async () => {
    const r = await postern();
    const { code, report } = await simulate(r, 'brute-force-distributed', '--attacker-net', '127.0.31', '--legit-net', '127.0.41');
    expect(code).toBe(0);
    expect(report.stopped).toBe(true);
    expect(report.reached_server).toBeLessThanOrEqual(30);
    expect(report.addresses_used).toBeGreaterThanOrEqual(5);
    expect(report.first_refusal).toMatchObject({ at: 'login' });
    expect(report.policy).toMatchObject({ target_kind: 'user', target: ALICE, action: 'protect', source: 'analyzer:brute_force' });
    expect(report.policy!.evidence).toMatchObject({ threshold: 5, addresses: expect.any(Number) });
    // Every guess after the policy was Postern's refusal, from new addresses too.
    expect(report.refused_by_postern).toBe(report.guesses - report.reached_server);
    expect(report.legit.logins).toBeGreaterThan(2);
    expect(report.legit).toMatchObject({ failed: 0, errors: 0 });
    // The analyzer learned the real user's address; none of the attackers'.
    const known = await until(async () => {
      const rows = await r.p.app.store.db.selectFrom('mailbox_logins').selectAll().where('user', '=', ALICE).execute();
      return rows.length && Number(rows[0].logins) >= report.legit.ok ? rows : undefined;
    }, 5_000, 'the known login address');
    expect(known.map((k) => k.ip)).toEqual(['127.0.41.10']);
  }, 60_000);

  it('spraying one address over many users: stopped by an address block; prints the story; the real user never refused', async () => {
    const r = await postern();
    const { code, stdout: out, stderr: err } = await inProcess(['simulate', 'spraying', '--config', r.file, '--port', String(r.imap), '--user', ALICE, '--password', ALICE_PW, '--attacker-net', '127.0.32', '--legit-net', '127.0.42']);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/spraying against 127\.0\.0\.1:\d+ from 127\.0\.32\.0\/24; alice@localhost logs in from 127\.0\.42\.10 every second/);
    expect(out).toMatch(/policy \S+ stopped the attack: ip:127\.0\.32\.66 block until .* \(password spraying: 5 users failed from 127\.0\.32\.66/);
    const m = /attacker: stopped after [\d.]+ s, when (\d+) guesses had reached the mailbox server/.exec(out);
    expect(Number(m?.[1])).toBeLessThanOrEqual(6);
    expect(out).toMatch(/legitimate user: \d+ logins, \d+ ok, 0 failed, 0 connection errors/);
  }, 60_000);

  it('protect admits the addresses a user logged in from and refuses others without asking Dovecot', async () => {
    const r = await postern();
    const db = r.p.app.store.db;
    // Bob logs in from .11 before the policy: that address is known from now on.
    const login = async (ip: string, pw = BOB_PW) => {
      const { c } = await RawImap.open(r.imap, { localAddress: ip });
      open.push(c);
      const res = await c.cmd('a', `LOGIN ${BOB} ${pw}`);
      c.close();
      return res;
    };
    expect(await login('127.0.50.11')).toMatch(/^a OK/m);
    const { code, stdout: out } = await inProcess(['policies', 'add', 'user', BOB, 'protect', '--ttl', '30m', '--config', r.file]);
    expect(code).toBe(0);
    const id = out.trim();
    await r.p.app.policies.load();
    const mark = dovecot().log().length;
    // Even the right password is refused from an address never seen for bob, and Dovecot never hears of it.
    expect(await login('127.0.50.12')).toMatch(/^a NO \[AUTHENTICATIONFAILED\] Authentication failed\./m);
    // Dovecot logs the client's address (forwarded by Postern) with every login and failure it sees.
    expect(dovecot().log().slice(mark)).not.toContain('127.0.50.12');
    expect(await login('127.0.50.11')).toMatch(/^a OK/m);
    // A wrong password from the known address still goes to Dovecot and fails there.
    expect(await login('127.0.50.11', 'wrong')).toMatch(/^a NO/m);
    await r.p.app.sink.flush();
    const failed = (await db.selectFrom('events').selectAll().where('type', '=', 'auth.failed').orderBy('id').execute()).map((e) => ({ ip: e.ip, ...JSON.parse(e.data) }));
    expect(failed).toMatchObject([
      { ip: '127.0.50.12', user: BOB, refused_by: id },
      { ip: '127.0.50.11', user: BOB },
    ]);
    expect(failed[1].refused_by).toBeUndefined();
    // The analyzer keeps bob's address, with both logins.
    const row = await until(async () => {
      const x = await db.selectFrom('mailbox_logins').selectAll().where('user', '=', BOB).executeTakeFirst();
      return x && Number(x.logins) === 2 ? x : undefined;
    }, 5_000, "bob's known address");
    expect(row).toMatchObject({ ip: '127.0.50.11' });
    expect(Number(row.last_ok)).toBeGreaterThanOrEqual(Number(row.first_ok));
    // Retention: an address not used for longer than it is forgotten; a recent one stays.
    await db.insertInto('mailbox_logins').values({ user: BOB, ip: '192.0.2.7', first_ok: 1_000, last_ok: 2_000, logins: 1 }).execute();
    expect(await purgeKnownLogins(db, Date.now() - 180 * 86_400_000)).toBe(1);
    expect((await db.selectFrom('mailbox_logins').select('ip').where('user', '=', BOB).execute()).map((x) => x.ip)).toEqual(['127.0.50.11']);
  }, 60_000);
});

describe('the protect action', () => {
  it('is for user targets only, with a message that says so', async () => {
    expect(validatePolicyInput({ target_kind: 'user', target: 'alice@example.com', action: 'protect', reason: 'r' })).toMatchObject({ action: 'protect', params: {} });
    expect(() => validatePolicyInput({ target_kind: 'ip', target: '192.0.2.1', action: 'protect', reason: 'r' })).toThrow(
      "action protect guards a mailbox user's logins and needs a user target, not ip",
    );
    expect(() => validatePolicyInput({ target_kind: 'user', target: 'alice@example.com', action: 'protect', params: { delay_ms: 5 }, reason: 'r' })).toThrow(
      'params.delay_ms is not a parameter of action protect',
    );
    const { code, stderr: err } = await inProcess(['policies', 'add', 'domain', 'example.com', 'protect', '--config', path.join(tempDir(), 'none.toml')]);
    expect(code).toBe(64);
    expect(err).toContain('action protect guards a mailbox user\'s logins and needs a user target, not domain');
  });
});
