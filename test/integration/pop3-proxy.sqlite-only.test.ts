// The POP3 monitor proxy over real sockets in front of a real Dovecot: transparency (STAT, LIST, UIDL, RETR and TOP
// the same direct and through the proxy), USER/PASS and AUTH PLAIN, login events without passwords, STLS and the
// STLS injection, the hostile inputs of reliability.md §4 answered by Postern and never reaching Dovecot, and a
// blocked address and user; and a hostile server (a wrong greeting, a reply injected after STLS).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { closedAfterEach, dovecotForSuite, fakeServer, posternPems, storedEvents, upstreamErrors } from '../harness/proxy-suite.ts';
import { RawImap } from '../harness/imap-client.ts';
import { RawPop3 } from '../harness/pop3-client.ts';
import { addPolicy } from '../../src/policy/admin.ts';

const why = await missing('dovecot');

const ALICE = 'alice@localhost';
const ALICE_PW = 'Correct Horse 7';
const BOB = 'bob@localhost';
const BOB_PW = 'Bob-Secret-9';
/** Lines that a dot-stuffing bug would break: `.`, `..x`, and a dot followed by CR (PO-04). */
const MESSAGE = 'From: carol@example.org\r\nTo: alice@localhost\r\nSubject: quarterly figures\r\nMessage-ID: <fig-1@example.org>\r\n\r\nThe figures:\r\n.\r\n..x\r\n.\r\nEnd.\r\n';
const SECOND = 'From: dave@example.org\r\nTo: alice@localhost\r\nSubject: second\r\n\r\nShort.\r\n';

const open = closedAfterEach();

async function raw(port: number, opts: { localAddress?: string; tls?: boolean } = {}): Promise<{ c: RawPop3; greeting: string }> {
  const r = await RawPop3.open(port, opts);
  open.push(r.c);
  return r;
}

describe.skipIf(why)('POP3 proxy in front of Dovecot', () => {
  // Dovecot offers XCLIENT only to login_trusted_networks.
  const dovecot = dovecotForSuite({ alice: ALICE_PW, bob: BOB_PW }, {
    setup: async (dv) => {
      const { c } = await RawImap.open(dv.imapPort);
      expect(await c.cmd('s1', `LOGIN ${ALICE} "${ALICE_PW}"`)).toMatch(/s1 OK/);
      for (const [i, m] of [MESSAGE, SECOND].entries()) {
        c.write(`s${i + 2} APPEND INBOX {${m.length}+}\r\n${m}\r\n`);
        expect(await c.tagged(`s${i + 2}`)).toMatch(/OK/);
      }
      c.close();
    },
  });

  async function proxy(pop3 = ''): Promise<TestPostern & { pop3: number; pop3s: number }> {
    const p = await startTestPostern(
      `[monitor.pop3]\nenabled = true\n${/failure_delay_ms/.test(pop3) ? '' : 'failure_delay_ms = 0\n'}${pop3}\n[monitor.pop3.upstream]\nhost = "127.0.0.1"\nport = ${dovecot().pop3Port}\n`,
    );
    open.push(p);
    const m = p.app.monitor.pop3;
    if (!m?.tlsPort) throw new Error('pop3 proxy not listening');
    return Object.assign(p, { pop3: m.port, pop3s: m.tlsPort });
  }

  const logSince = (mark: number) => dovecot().log().slice(mark);

  /** A session's answers to the read-only TRANSACTION commands, pipelined in one write. */
  async function transcript(c: RawPop3): Promise<string[]> {
    const cmds = ['STAT', 'LIST', 'LIST 2', 'UIDL', 'UIDL 1', 'RETR 1', 'TOP 1 0', 'RETR 2', 'RETR 9'];
    c.write(cmds.map((l) => `${l}\r\n`).join(''));
    const out: string[] = [];
    for (const l of cmds) out.push(/^(STAT|LIST \d|UIDL \d)/.test(l) ? await c.line() : await c.multi());
    return out;
  }

  it('USER/PASS, then STAT, LIST, UIDL, RETR and TOP read exactly what Dovecot gives directly', async () => {
    const p = await proxy();
    const direct = (await raw(dovecot().pop3Port)).c;
    expect(await direct.cmd(`USER ${ALICE}`)).toMatch(/^\+OK/);
    expect(await direct.cmd(`PASS ${ALICE_PW}`)).toMatch(/^\+OK/);
    const want = await transcript(direct);
    expect(want[5]).toBe(`+OK ${MESSAGE.length} octets\r\n${MESSAGE.replace(/^\./gm, '..')}.\r\n`);

    const mark = dovecot().log().length;
    const { c, greeting } = await raw(p.pop3, { localAddress: '127.0.0.3' });
    expect(greeting).toMatch(/^\+OK POP3 server ready\.\r\n$/);
    expect(greeting).not.toMatch(/</);
    expect(await c.cmd(`USER ${ALICE}`)).toMatch(/^\+OK/);
    expect(await c.cmd(`PASS ${ALICE_PW}`)).toMatch(/^\+OK/);
    expect(await transcript(c)).toEqual(want);
    const caps = await c.cmdMulti('CAPA');
    expect(caps).toMatch(/^UIDL\r$/m);
    for (const hidden of ['STLS', 'SASL', 'USER', 'XCLIENT']) expect(caps).not.toContain(hidden);
    expect(await c.cmd('QUIT')).toMatch(/^\+OK/);
    expect(await c.waitClosed()).toBe(true);

    const [ok] = await storedEvents(p, 'auth.succeeded');
    expect(ok).toMatchObject({ ip: '127.0.0.3', data: { user: ALICE, protocol: 'pop3', method: 'USER', tls: null, session: ok.conn_id } });
    // The client's address and Postern's session id reached Dovecot through XCLIENT.
    expect(logSince(mark)).toMatch(new RegExp(`pop3-login: .*Login: user=<alice@localhost>.*rip=127\\.0\\.0\\.3.*session=<${ok.conn_id}>`));
    await until(async () => (await storedEvents(p, 'pop3.close')).length === 1, 5000, 'close event');
    const [closed] = await storedEvents(p, 'pop3.close');
    expect(closed.data).toMatchObject({ user: ALICE, logged_in: true, errors: 0, reason: 'quit' });
  });

  it('AUTH PLAIN with an initial response, and through a continuation, over implicit TLS; AUTH * is a clean cancel (PO-06)', async () => {
    const p = await proxy();
    const { c } = await raw(p.pop3s, { tls: true });
    expect(await c.cmdMulti('AUTH')).toMatch(/^\+OK[^\n]*\r\nPLAIN\r\nLOGIN\r\n\.\r\n$/);
    expect(await c.cmd('AUTH PLAIN')).toBe('+ \r\n');
    expect(await c.cmd('*')).toMatch(/^-ERR Authentication aborted/);
    expect(await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${BOB}\0${BOB_PW}`).toString('base64')}`)).toMatch(/^\+OK/);
    expect(await c.cmd('STAT')).toMatch(/^\+OK 0 0/);

    const s2 = (await raw(p.pop3)).c;
    expect(await s2.cmd('AUTH PLAIN')).toBe('+ \r\n');
    expect(await s2.cmd(Buffer.from(`${ALICE}\0${ALICE}\0${ALICE_PW}`).toString('base64'))).toMatch(/^\+OK/);
    expect(await s2.cmd('STAT')).toMatch(/^\+OK 2 /);
    const ok = await storedEvents(p, 'auth.succeeded');
    expect(ok.map((e) => [e.data.user, e.data.method])).toEqual([[BOB, 'AUTH PLAIN'], [ALICE, 'AUTH PLAIN']]);
    expect(ok[0].data.tls).toMatchObject({ version: expect.stringMatching(/^TLS/) });
  });

  it('a wrong password is an auth.failed event with the user, and the password is nowhere in the store', async () => {
    const p = await proxy();
    const mark = dovecot().log().length;
    const { c } = await raw(p.pop3);
    const wrong = 'Guess Number 1';
    expect(await c.cmd(`USER ${ALICE}`)).toMatch(/^\+OK/);
    expect(await c.cmd(`PASS ${wrong}`)).toMatch(/^-ERR \[AUTH\] /);
    // After a failed PASS the client starts again with USER (RFC 1939 §7).
    expect(await c.cmd('PASS again')).toMatch(/^-ERR No user name given/);
    expect(await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${BOB}\0Guess-Number-2`).toString('base64')}`)).toMatch(/^-ERR \[AUTH\] /);
    await until(async () => /pop3-login: .*auth failed/.test(logSince(mark)), 5000, 'Dovecot logging the failure');
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed.map((e) => [e.data.user, e.data.method, e.data.protocol])).toEqual([[ALICE, 'USER', 'pop3'], [BOB, 'AUTH PLAIN', 'pop3']]);
    expect(failed[0]).toMatchObject({ ip: '127.0.0.1', data: { tls: null, session: failed[0].conn_id } });
    const dump = JSON.stringify(await p.app.store.db.selectFrom('events').selectAll().execute());
    expect(dump).not.toContain(wrong);
    expect(dump).not.toContain('Guess-Number-2');
    if (p.app.store.dialect === 'sqlite') {
      for (const f of fs.readdirSync(p.dir).filter((n) => /\.(db|sqlite)(-wal)?$/.test(n))) {
        expect(fs.readFileSync(path.join(p.dir, f)).includes(wrong), f).toBe(false);
      }
    }
  });

  it('STLS, then a login inside TLS; commands pipelined behind STLS in the clear are dropped (PO-02)', async () => {
    const p = await proxy();
    const { c } = await raw(p.pop3);
    expect(await c.cmdMulti('CAPA')).toMatch(/^STLS\r$/m);
    expect(await c.cmd('STLS')).toMatch(/^\+OK/);
    await c.starttls();
    expect(await c.cmdMulti('CAPA')).not.toMatch(/STLS/);
    expect(await c.cmd(`USER ${ALICE}`)).toMatch(/^\+OK/);
    expect(await c.cmd(`PASS ${ALICE_PW}`)).toMatch(/^\+OK/);
    expect(await c.cmd('STAT')).toMatch(/^\+OK 2 /);
    const [ok] = await storedEvents(p, 'auth.succeeded');
    expect(ok.data.tls).toMatchObject({ version: expect.stringMatching(/^TLS/) });

    const mark = dovecot().log().length;
    const s2 = (await raw(p.pop3)).c;
    s2.write(`STLS\r\nUSER ${BOB}\r\nPASS ${BOB_PW}\r\n`);
    expect(await s2.line()).toMatch(/^\+OK Begin TLS/);
    await s2.starttls();
    // Inside TLS nothing of the injected USER/PASS survives: PASS needs a USER first.
    expect(await s2.cmd(`PASS ${BOB_PW}`)).toMatch(/^-ERR No user name given/);
    expect(s2.transcript).not.toMatch(/^\+OK\r\n/m);
    expect(logSince(mark)).not.toMatch(/bob/);
    const errs = await storedEvents(p, 'pop3.protocol_error');
    expect(errs.map((e) => e.data.kind)).toContain('starttls_injection');
    expect((await storedEvents(p, 'auth.succeeded')).filter((e) => e.data.user === BOB)).toHaveLength(0);
  });

  it('hostile input before login is answered by Postern and never reaches Dovecot (PO-01, PO-05, PO-07, PO-08)', async () => {
    const p = await proxy();
    const mark = dovecot().log().length;
    const { c } = await raw(p.pop3);
    expect(await c.cmd(`USER ${'a'.repeat(300)}`)).toMatch(/^-ERR Command line too long/);
    expect(await c.cmd('STAT')).toMatch(/^-ERR Log in first/);
    expect(await c.cmdMulti('CAPA')).toMatch(/^SASL PLAIN LOGIN\r$/m);
    // The third invalid command ends the session (PO-07).
    c.write('XCLIENT ADDR=6.6.6.6\r\nNOOP\r\n');
    expect(await c.line()).toMatch(/^-ERR Unknown command/);
    expect(await c.line()).toMatch(/^-ERR Too many bad commands/);
    expect(await c.waitClosed()).toBe(true);

    const s2 = (await raw(p.pop3)).c;
    expect(await s2.cmd(`APOP ${ALICE} c4c9334bac560ecc979e58001b3e22fb`)).toMatch(/^-ERR APOP is not available/);
    s2.write(`USER ${ALICE}\rPASS x\r\n`);
    expect(await s2.line()).toMatch(/^-ERR CR sent without LF/);
    expect(await s2.cmd(`AUTH PLAIN !!notbase64`)).toMatch(/^-ERR Invalid base64/);
    expect(await s2.waitClosed()).toBe(true);
    expect(logSince(mark)).not.toMatch(/pop3-login/);
    const kinds = (await storedEvents(p, 'pop3.protocol_error')).map((e) => e.data.kind);
    expect(kinds).toEqual(expect.arrayContaining(['line_too_long', 'needs_login', 'unknown_command', 'too_many_bad_commands', 'refused', 'bare_cr', 'bad_base64']));
    expect(await storedEvents(p, 'auth.failed')).toHaveLength(0);
  });

  it('after login: bad commands get -ERR in their turn among pipelined answers, and never reach Dovecot', async () => {
    const p = await proxy();
    const { c } = await raw(p.pop3);
    await c.cmd(`USER ${ALICE}`);
    expect(await c.cmd(`PASS ${ALICE_PW}`)).toMatch(/^\+OK/);
    c.write(`RETR 1\r\nXCLIENT ADDR=6.6.6.6\r\nRETR x\r\nUSER ${BOB}\r\n${'NOOP '.repeat(60)}\r\nNOOP\r\n`);
    expect(await c.multi()).toContain('quarterly figures');
    expect(await c.line()).toMatch(/^-ERR Unknown command/);
    expect(await c.line()).toMatch(/^-ERR RETR takes 1 numeric argument/);
    expect(await c.line()).toMatch(/^-ERR Already logged in/);
    expect(await c.line()).toMatch(/^-ERR Command line too long/);
    expect(await c.line()).toMatch(/^\+OK/);
    expect(c.closed).toBe(false);
    expect(await c.cmd('QUIT')).toMatch(/^\+OK/);
    expect(await c.waitClosed()).toBe(true);
    await until(async () => (await storedEvents(p, 'pop3.close')).length === 1, 5000, 'close event');
    const [closed] = await storedEvents(p, 'pop3.close');
    // USER, PASS, RETR, NOOP, QUIT; the four refused ones are errors.
    expect(closed.data).toMatchObject({ user: ALICE, logged_in: true, commands: 5, errors: 4 });
  });

  it('a blocked address is refused at connect; a blocked user is refused at login without asking Dovecot', async () => {
    const p = await proxy();
    await addPolicy(p.app.store.db, { target_kind: 'ip', target: '127.0.0.5', action: 'block', reason: 'test block', ttl_s: 600 });
    await addPolicy(p.app.store.db, { target_kind: 'user', target: BOB, action: 'block', reason: 'test user block', ttl_s: 600 });
    await p.app.policies.load();
    const { c, greeting } = await raw(p.pop3, { localAddress: '127.0.0.5' });
    expect(greeting).toMatch(/^-ERR /);
    expect(await c.waitClosed()).toBe(true);
    const mark = dovecot().log().length;
    const other = (await raw(p.pop3, { localAddress: '127.0.0.6' })).c;
    await other.cmd(`USER ${BOB}`);
    expect(await other.cmd(`PASS ${BOB_PW}`)).toMatch(/^-ERR \[AUTH\] Authentication failed\./);
    await other.cmd(`USER ${ALICE}`);
    expect(await other.cmd(`PASS ${ALICE_PW}`)).toMatch(/^\+OK/);
    expect(logSince(mark)).not.toMatch(/bob/);
    expect((await storedEvents(p, 'pop3.connect.refused'))[0]).toMatchObject({ ip: '127.0.0.5' });
    expect((await storedEvents(p, 'pop3.login.refused'))[0].data).toMatchObject({ user: BOB, target_kind: 'user' });
  });

  it('a protected user logs in only from an address it logged in from before; others are refused without asking Dovecot', async () => {
    const p = await proxy();
    const login = async (from: string) => {
      const { c } = await raw(p.pop3, { localAddress: from });
      await c.cmd(`USER ${ALICE}`);
      const r = await c.cmd(`PASS ${ALICE_PW}`);
      c.close();
      return r;
    };
    expect(await login('127.0.0.11')).toMatch(/^\+OK/);
    const policy = await addPolicy(p.app.store.db, { target_kind: 'user', target: ALICE, action: 'protect', reason: 'test protect', ttl_s: 600 });
    await p.app.policies.load();
    const mark = dovecot().log().length;
    expect(await login('127.0.0.12')).toMatch(/^-ERR \[AUTH\] Authentication failed\./);
    expect(logSince(mark)).not.toMatch(/pop3-login/);
    expect(await login('127.0.0.11')).toMatch(/^\+OK/);
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ ip: '127.0.0.12', data: { user: ALICE, protocol: 'pop3', refused_by: policy.id } });
  });

  it('delays failure replies per address', async () => {
    const p = await proxy('failure_delay_ms = 300\nfailure_delay_max_ms = 600');
    const { c } = await raw(p.pop3, { localAddress: '127.0.0.7' });
    const times: number[] = [];
    for (let i = 0; i < 2; i++) {
      await c.cmd(`USER ${ALICE}`);
      const t = Date.now();
      expect(await c.cmd(`PASS wrong${i}`)).toMatch(/^-ERR/);
      times.push(Date.now() - t);
    }
    expect(times[0]).toBeGreaterThanOrEqual(300);
    expect(times[1]).toBeGreaterThanOrEqual(600);
  });
});

describe('POP3 proxy in front of a hostile server', () => {
  async function proxyTo(port: number, tlsMode = 'none'): Promise<TestPostern & { pop3: number }> {
    const p = await startTestPostern(`[monitor.pop3]\nenabled = true\nfailure_delay_ms = 0\n[monitor.pop3.upstream]\nhost = "127.0.0.1"\nport = ${port}\ntls = "${tlsMode}"\ntimeout_s = 5\n`);
    open.push(p);
    return Object.assign(p, { pop3: p.app.monitor.pop3?.port ?? 0 });
  }

  it('a server that does not greet with +OK is not used', async () => {
    const srv = await fakeServer('* OK IMAP4rev1 ready', () => '+OK\r\n');
    open.push(srv);
    const p = await proxyTo(srv.port);
    const { c } = await raw(p.pop3);
    await c.cmd('USER alice');
    expect(await c.cmd('PASS pw')).toMatch(/^-ERR \[SYS\/TEMP\]/);
    expect(srv.seen).toEqual([]);
    expect(await upstreamErrors(p, 'pop3')).toEqual(['server_greeting']);
    expect(await c.cmd('QUIT')).toMatch(/^\+OK/);
  });

  // The +OK to STLS is followed, in the same segment, by a forged +OK for the login to come.
  it('a reply injected after the server\'s +OK to STLS is dropped, not taken as the login answer', async () => {
    const pems = { key: '', cert: '' };
    const srv = await fakeServer('+OK ready', (l) => (l.startsWith('AUTH ') ? '-ERR [AUTH] Authentication failed.\r\n' : '+OK\r\n'), {
      line: /^STLS$/,
      reply: '+OK Begin TLS negotiation now.\r\n+OK Logged in.\r\n',
      pems,
    });
    open.push(srv);
    const p = await proxyTo(srv.port, 'starttls');
    Object.assign(pems, posternPems(p));
    const { c } = await raw(p.pop3);
    await c.cmd('USER alice');
    expect(await c.cmd('PASS pw')).toMatch(/^-ERR \[AUTH\] Authentication failed/);
    // The credentials went inside TLS and base64-encoded, once.
    expect(srv.seen).toEqual(['STLS', `AUTH PLAIN ${Buffer.from('\0alice\0pw').toString('base64')}`]);
    expect(await upstreamErrors(p, 'pop3')).toEqual(['server_starttls_junk']);
  });
});
