// The IMAP monitor proxy over real sockets in front of a real Dovecot: transparency (the same FETCH direct and
// through the proxy, imapflow as a real client), login events without passwords, the hostile inputs of
// reliability.md §3 answered by Postern and never reaching Dovecot, a blocked address, and a password-guessing
// attack stopped by the trend analyzer while the real user still logs in.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImapFlow } from 'imapflow';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { closedAfterEach, dovecotForSuite, fakeServer, posternPems, storedEvents, upstreamErrors } from '../harness/proxy-suite.ts';
import { RawImap } from '../harness/imap-client.ts';
import { addPolicy } from '../../src/policy/admin.ts';

const why = await missing('dovecot');

const ALICE = 'alice@localhost';
const ALICE_PW = 'Correct-Horse-7';
const BOB = 'bob@localhost';
const BOB_PW = 'Bob-Secret-9';
/** A user and password that need quoting: a proxy that copied the client's bytes or quoted badly would fail them. */
const ODD = 'odd user@localhost';
const ODD_PW = 'p "w\\d {3}';
const MESSAGE = 'From: carol@example.org\r\nTo: alice@localhost\r\nSubject: quarterly figures\r\nMessage-ID: <fig-1@example.org>\r\n\r\nThe figures are attached.\r\n';

const open = closedAfterEach();

async function raw(port: number, opts: { localAddress?: string; tls?: boolean } = {}): Promise<{ c: RawImap; greeting: string }> {
  const r = await RawImap.open(port, opts);
  open.push(r.c);
  return r;
}

describe.skipIf(why)('IMAP proxy in front of Dovecot', () => {
  const dovecot = dovecotForSuite({ alice: ALICE_PW, bob: BOB_PW, [ODD]: ODD_PW }, {
    extra: 'auth_username_chars =',
    setup: async (dv) => {
      const { c } = await RawImap.open(dv.imapPort);
      expect(await c.cmd('s1', `LOGIN ${ALICE} ${ALICE_PW}`)).toMatch(/s1 OK/);
      expect(await c.cmd('s2', 'CREATE Keep')).toMatch(/s2 OK/);
      c.write(`s3 APPEND INBOX {${MESSAGE.length}+}\r\n${MESSAGE}\r\n`);
      expect(await c.tagged('s3')).toMatch(/s3 OK/);
      c.close();
    },
  });

  async function proxy(imap = '', more = ''): Promise<TestPostern & { imap: number; imaps: number }> {
    const p = await startTestPostern(
      `[monitor.imap]\nenabled = true\n${/failure_delay_ms/.test(imap) ? '' : 'failure_delay_ms = 0\n'}${imap}\n[monitor.imap.upstream]\nhost = "127.0.0.1"\nport = ${dovecot().imapPort}\n${more}`,
    );
    open.push(p);
    const m = p.app.monitor.imap;
    if (!m?.tlsPort) throw new Error('imap proxy not listening');
    return Object.assign(p, { imap: m.port, imaps: m.tlsPort });
  }

  /** Dovecot's log lines since `mark` (a length of the log). */
  const logSince = (mark: number) => dovecot().log().slice(mark);

  it('logs in and fetches exactly what Dovecot gives directly; imapflow works through STARTTLS and APPEND', async () => {
    const p = await proxy();
    const fetchOf = async (port: number) => {
      const { c } = await raw(port);
      expect(await c.cmd('a', `LOGIN ${ALICE} "${ALICE_PW}"`)).toMatch(/^a OK /m);
      expect(await c.cmd('b', 'SELECT INBOX')).toMatch(/b OK/);
      // No FLAGS: \\Recent goes to the first session only.
      const r = await c.cmd('c', 'FETCH 1 (BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)');
      await c.cmd('d', 'LOGOUT');
      return r.split('\r\n').filter((l) => !l.startsWith('c OK'));
    };
    const direct = await fetchOf(dovecot().imapPort);
    expect(direct.join('\n')).toContain('quarterly figures');
    expect(await fetchOf(p.imap)).toEqual(direct);

    const client = new ImapFlow({ host: '127.0.0.1', port: p.imap, secure: false, doSTARTTLS: true, tls: { rejectUnauthorized: false }, auth: { user: ALICE, pass: ALICE_PW }, logger: false });
    await client.connect();
    const lock = await client.getMailboxLock('INBOX');
    try {
      const msg = await client.fetchOne('1', { source: true, envelope: true });
      expect(msg && msg.source?.toString()).toBe(MESSAGE);
      const big = `Subject: big\r\n\r\n${'0123456789abcdef\r\n'.repeat(20_000)}`;
      await client.append('Keep', big, ['\\Seen']);
      const st = await client.status('Keep', { messages: true });
      expect(st && st.messages).toBeGreaterThanOrEqual(1);
    } finally {
      lock.release();
    }
    await client.logout();
    const ok = await storedEvents(p, 'auth.succeeded');
    // The raw session's LOGIN, then imapflow's AUTHENTICATE PLAIN with an initial response, inside STARTTLS.
    expect(ok.map((e) => [e.data.user, e.data.method])).toEqual([[ALICE, 'LOGIN'], [ALICE, 'AUTHENTICATE PLAIN']]);
    expect(ok[1].data.tls).toMatchObject({ version: expect.stringMatching(/^TLS/) });
    expect(ok[0]).toMatchObject({ ip: '127.0.0.1', data: { protocol: 'imap', tls: null, session: ok[0].conn_id } });
  });

  it('filters the capabilities: no COMPRESS, LITERAL- instead of LITERAL+, and refuses COMPRESS itself', async () => {
    const p = await proxy();
    const { c, greeting } = await raw(p.imap);
    expect(greeting).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 LITERAL- .*STARTTLS.*AUTH=PLAIN/);
    const login = await c.cmd('a', `LOGIN ${ALICE} ${ALICE_PW}`);
    expect(login).toMatch(/^a OK \[CAPABILITY IMAP4rev1 LITERAL- /m);
    const caps = await c.cmd('b', 'CAPABILITY');
    expect(caps).toMatch(/^\* CAPABILITY IMAP4rev1 LITERAL- /m);
    for (const hidden of ['COMPRESS', 'LITERAL+', 'STARTTLS', 'AUTH=', 'SASL-IR']) {
      expect(login + caps).not.toContain(hidden);
    }
    expect(await c.cmd('c', 'COMPRESS DEFLATE')).toMatch(/^c BAD /m);
    expect(await c.cmd('d', 'NOOP')).toMatch(/^d OK/m);
  });

  it('a wrong password is an auth.failed event with the user, and the password is nowhere in the store', async () => {
    const p = await proxy();
    const { c } = await raw(p.imaps, { tls: true });
    const wrong = 'Guess-Number-1';
    expect(await c.cmd('a', `LOGIN ${ALICE} ${wrong}`)).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/m);
    c.write(`b AUTHENTICATE PLAIN ${Buffer.from(`\0${BOB}\0Guess-Number-2`).toString('base64')}\r\n`);
    expect(await c.tagged('b')).toMatch(/^b NO \[AUTHENTICATIONFAILED\]/m);
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed).toHaveLength(2);
    expect(failed[0]).toMatchObject({ ip: '127.0.0.1', data: { user: ALICE, protocol: 'imap', method: 'LOGIN', tls: { version: expect.any(String) } } });
    expect(failed[1].data).toMatchObject({ user: BOB, method: 'AUTHENTICATE PLAIN' });
    const all = await p.app.store.db.selectFrom('events').selectAll().execute();
    const dump = JSON.stringify(all);
    expect(dump).not.toContain(wrong);
    expect(dump).not.toContain('Guess-Number-2');
    if (p.app.store.dialect === 'sqlite') {
      for (const f of fs.readdirSync(p.dir).filter((n) => /\.(db|sqlite)(-wal)?$/.test(n))) {
        expect(fs.readFileSync(path.join(p.dir, f)).includes(wrong), f).toBe(false);
      }
    }
  });

  it('STARTTLS: commands pipelined behind it in the clear are dropped (IM-09)', async () => {
    const p = await proxy();
    const mark = dovecot().log().length;
    const { c } = await raw(p.imap);
    c.write(`a STARTTLS\r\nb LOGIN ${ALICE} ${ALICE_PW}\r\n`);
    expect(await c.tagged('a')).toMatch(/^a OK/m);
    await c.starttls();
    expect(await c.cmd('c', 'NOOP')).toMatch(/^c OK/m);
    expect(c.transcript).not.toMatch(/^b /m);
    expect(await storedEvents(p, 'auth.succeeded')).toHaveLength(0);
    const errs = await storedEvents(p, 'imap.protocol_error');
    expect(errs.map((e) => e.data.kind)).toContain('starttls_injection');
    // Inside TLS the session is a normal one.
    expect(await c.cmd('d', `LOGIN ${ALICE} ${ALICE_PW}`)).toMatch(/^d OK/m);
    expect(logSince(mark)).toMatch(/Login: user=<alice@localhost>.*rip=127\.0\.0\.1/);
  });

  it('hostile input before login is answered by Postern and never reaches Dovecot (IM-04..IM-08, IM-13, IM-16)', async () => {
    const p = await proxy();
    const mark = dovecot().log().length;
    const { c } = await raw(p.imap);
    expect(await c.cmd('a', 'LOGIN {99999999999999999999}')).toMatch(/^a BAD \[TOOBIG\]/m);
    expect(await c.cmd('b', `LOGIN ${'('.repeat(10_000)}`)).toMatch(/^b BAD /m);
    expect(await c.cmd('n', 'NOOP')).toMatch(/^n OK/m);
    // The third invalid command ends the session (IM-08).
    c.write('c\x01 NOOP\r\n');
    expect(await c.until(/\* BYE Too many invalid IMAP commands\.\r\n/)).toMatch(/^\* BAD Invalid tag/m);
    expect(await c.waitClosed()).toBe(true);

    const s2 = (await raw(p.imap)).c;
    s2.write('a NOOP\rb LOGOUT\r\n');
    expect(await s2.tagged('a')).toMatch(/^a BAD CR sent without LF/m);
    expect(await s2.cmd('c', 'SELECT INBOX')).toMatch(/^c BAD Log in first/m);
    s2.write(`d LOGIN ${'x'.repeat(70_000)}\r\n`);
    expect(await s2.tagged('d')).toMatch(/^d BAD Command line too long/m);
    expect(await s2.waitClosed()).toBe(true);

    const s3 = (await raw(p.imap)).c;
    // Non-synchronising literal over 4096 with a command inside: skipped exactly, the inner command never runs (IM-03).
    const inner = `\r\nx LOGIN ${ALICE} ${ALICE_PW}\r\n`;
    const data = inner + 'y'.repeat(5000 - inner.length);
    s3.write(`a LOGIN {5000+}\r\n${data} pw\r\n`);
    expect(await s3.tagged('a')).toMatch(/^a BAD \[TOOBIG\]/m);
    expect(await s3.cmd('b', 'NOOP')).toMatch(/^b OK/m);
    expect(s3.transcript).not.toMatch(/^x /m);
    // AUTHENTICATE: invalid base64, cancel, then a good exchange with LOGIN (IM-13).
    expect(await s3.cmd('c', 'AUTHENTICATE PLAIN !!notbase64')).toMatch(/^c BAD Invalid base64/m);
    s3.write('d AUTHENTICATE PLAIN\r\n');
    await s3.until(/^\+ \r\n/m);
    s3.write('*\r\n');
    expect(await s3.tagged('d')).toMatch(/^d BAD Authentication aborted/m);
    expect(await s3.waitClosed(300)).toBe(false);
    expect(logSince(mark)).not.toMatch(/Login:|auth failed/);
    s3.write('e AUTHENTICATE LOGIN\r\n');
    await s3.until(/^\+ VXNlcm5hbWU6\r\n/m);
    s3.write(Buffer.from(BOB).toString('base64') + '\r\n');
    await s3.until(/^\+ UGFzc3dvcmQ6\r\n/m);
    s3.write(Buffer.from(BOB_PW).toString('base64') + '\r\n');
    expect(await s3.tagged('e')).toMatch(/^e OK/m);
    expect(logSince(mark)).toMatch(/Login: user=<bob@localhost>, method=PLAIN/);
    expect(logSince(mark)).not.toMatch(/alice/);
    const kinds = (await storedEvents(p, 'imap.protocol_error')).map((e) => e.data.kind);
    expect(kinds).toEqual(expect.arrayContaining(['literal_too_big', 'too_deep', 'bad_tag', 'too_many_bad_commands', 'bare_cr', 'needs_login', 'line_too_long', 'nonsync_too_big', 'bad_base64']));
  });

  it('a login with synchronising literals, written one byte at a time, gets + only for each literal (IM-01)', async () => {
    const p = await proxy();
    const { c } = await raw(p.imap);
    const drip = async (text: string) => {
      for (const ch of text) {
        c.write(ch);
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    await drip(`a LOGIN {${ALICE.length}}\r\n`);
    expect(await c.until(/^\+ [^\n]*\n/m)).toMatch(/^\+ Ready/m);
    await drip(`${ALICE} {${ALICE_PW.length}}\r\n`);
    await c.until(/^\+ [^\n]*\n/m);
    await drip(`${ALICE_PW}\r\nb NOOP\r\n`);
    expect(await c.tagged('a')).toMatch(/^a OK/m);
    expect(await c.tagged('b')).toMatch(/^b OK/m);
    expect(c.transcript.match(/^\+ /gm)).toHaveLength(2);
  });

  it('re-serialises user names: quotes and backslashes log in, CR LF never splits the command (IM-12); ID x-* fields are dropped (IM-11)', async () => {
    const p = await proxy();
    const mark = dovecot().log().length;
    const { c } = await raw(p.imap);
    expect(await c.cmd('i', 'ID ("name" "evil" "x-originating-ip" "6.6.6.6" "x-session-ext-id" "forged")')).toMatch(/^i OK/m);
    const user = 'a" b\r\nc LOGOUT';
    c.write(`a LOGIN {${user.length}}\r\n`);
    await c.until(/^\+ /m);
    c.write(`${user} x\r\n`);
    expect(await c.tagged('a')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/m);
    expect(c.closed).toBe(false);
    c.write(`b LOGIN {${ODD.length}+}\r\n${ODD} "${ODD_PW.replace(/[\\"]/g, '\\$&')}"\r\n`);
    expect(await c.tagged('b')).toMatch(/^b OK/m);
    expect(await c.cmd('s', 'SELECT INBOX')).toMatch(/^s OK/m);
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed.map((e) => e.data.user)).toEqual([user]);
    const log = logSince(mark);
    expect(log).toMatch(/Login: user=<odd user@localhost>.*rip=127\.0\.0\.1/);
    expect(log).not.toContain('6.6.6.6');
    expect(log).not.toContain('forged');
    const session = (await storedEvents(p, 'auth.succeeded'))[0].data.session as string;
    expect(log).toContain(`session=<${session}>`);
  });

  it('after login: oversized literals are refused and a command hidden in one never runs (IM-03, IM-17)', async () => {
    const p = await proxy();
    const { c } = await raw(p.imap);
    await c.cmd('a', `LOGIN ${ALICE} ${ALICE_PW}`);
    const inner = '\r\nb DELETE Keep\r\n';
    c.write(`c APPEND Keep {5000+}\r\n${inner}${'z'.repeat(5000 - inner.length)}\r\n`);
    expect(await c.tagged('c')).toMatch(/^c BAD \[TOOBIG\]/m);
    expect(await c.cmd('d', 'LIST "" Keep')).toMatch(/^\* LIST .*Keep/m);
    expect(c.transcript).not.toMatch(/^b /m);
    expect(await c.cmd('e', 'APPEND Keep {99999999999}')).toMatch(/^e BAD \[TOOBIG\]/m);
    // IDLE: DONE is recognised as a line of its own.
    c.write('f IDLE\r\n');
    await c.until(/^\+ idling/m);
    c.write('DONE\r\n');
    expect(await c.tagged('f')).toMatch(/^f OK/m);
    expect(await c.cmd('g', 'LOGOUT')).toMatch(/^g OK/m);
    expect(await c.waitClosed()).toBe(true);
    await until(async () => (await storedEvents(p, 'imap.close')).length === 1, 5000, 'close event');
    const [closeEv] = await storedEvents(p, 'imap.close');
    expect(closeEv.data).toMatchObject({ user: ALICE, logged_in: true, reason: expect.any(String) });
    // LOGIN, LIST, IDLE, LOGOUT; the refused APPENDs are protocol errors.
    expect(closeEv.data).toMatchObject({ commands: 4, errors: 2 });
  });

  it('a blocked address is refused at connect; a blocked user is refused at login without asking Dovecot', async () => {
    const p = await proxy();
    await addPolicy(p.app.store.db, { target_kind: 'ip', target: '127.0.0.5', action: 'block', reason: 'test block', ttl_s: 600 });
    await addPolicy(p.app.store.db, { target_kind: 'user', target: BOB, action: 'block', reason: 'test user block', ttl_s: 600 });
    await p.app.policies.load();
    const { c, greeting } = await raw(p.imap, { localAddress: '127.0.0.5' });
    expect(greeting).toMatch(/^\* BYE /);
    expect(await c.waitClosed()).toBe(true);
    const mark = dovecot().log().length;
    const other = (await raw(p.imap, { localAddress: '127.0.0.6' })).c;
    expect(await other.cmd('a', `LOGIN ${BOB} ${BOB_PW}`)).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/m);
    expect(await other.cmd('b', `LOGIN ${ALICE} ${ALICE_PW}`)).toMatch(/^b OK/m);
    expect(logSince(mark)).not.toMatch(/bob/);
    expect((await storedEvents(p, 'imap.connect.refused'))[0]).toMatchObject({ ip: '127.0.0.5' });
    expect((await storedEvents(p, 'imap.login.refused'))[0].data).toMatchObject({ user: BOB, target_kind: 'user' });
  });

  it('delays failure replies progressively per address, not for others (IM-14)', async () => {
    const p = await proxy('failure_delay_ms = 300\nfailure_delay_max_ms = 600');
    const { c } = await raw(p.imap, { localAddress: '127.0.0.7' });
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      await c.cmd(`a${i}`, `LOGIN ${ALICE} wrong${i}`);
      times.push(Date.now() - t);
    }
    expect(times[0]).toBeGreaterThanOrEqual(300);
    expect(times[1]).toBeGreaterThanOrEqual(600);
    expect(times[2]).toBeGreaterThanOrEqual(600);
    expect(times[2]).toBeLessThan(600 + 3000);
    const other = (await raw(p.imap, { localAddress: '127.0.0.8' })).c;
    const t = Date.now();
    expect(await other.cmd('b', `LOGIN ${ALICE} ${ALICE_PW}`)).toMatch(/^b OK/m);
    expect(Date.now() - t).toBeLessThan(300 + 3000);
  });

  it('with the trend analyzer, a single-address guessing attack is stopped within 10 guesses; the real user still logs in', async () => {
    // The detector's default threshold (10 failures from one address); Postern's delays shortened from 1 s..15 s
    // so that the test is quick, but long enough at the end (2 s) for the analyzer to write its block.
    const p = await proxy('failure_delay_ms = 250\nfailure_delay_max_ms = 2000', '[trends]\nenabled = true\n');
    const attacker = '127.0.0.9';
    let stopped = false;
    let attempts = 0;
    const realUser = async () => {
      const { c } = await raw(p.imap, { localAddress: '127.0.0.10' });
      const r = await c.cmd('u', `LOGIN ${ALICE} ${ALICE_PW}`);
      c.close();
      return r;
    };
    for (let conn = 0; conn < 15 && !stopped; conn++) {
      const { c, greeting } = await raw(p.imap, { localAddress: attacker });
      if (greeting.startsWith('* BYE')) {
        stopped = true;
        break;
      }
      for (let i = 0; i < 2 && !c.closed; i++) {
        attempts++;
        await c.cmd(`g${i}`, `LOGIN ${ALICE} guess-${conn}-${i}`, 20_000);
      }
      c.close();
      if (conn === 2) expect(await realUser()).toMatch(/^u OK/m);
    }
    expect(stopped).toBe(true);
    const guesses = (await storedEvents(p, 'auth.failed')).filter((e) => e.ip === attacker);
    expect(guesses.length).toBeLessThanOrEqual(10);
    expect(attempts).toBeGreaterThanOrEqual(guesses.length);
    expect(await realUser()).toMatch(/^u OK/m);
    const findings = await storedEvents(p, 'trends.finding');
    expect(JSON.stringify(findings)).toContain(attacker);
  }, 60_000);
});

describe('IMAP proxy in front of a hostile server (IM-10)', () => {
  async function proxyTo(port: number, tlsMode = 'none'): Promise<TestPostern & { imap: number }> {
    const p = await startTestPostern(`[monitor.imap]\nenabled = true\nfailure_delay_ms = 0\n[monitor.imap.upstream]\nhost = "127.0.0.1"\nport = ${port}\ntls = "${tlsMode}"\ntimeout_s = 5\n`);
    open.push(p);
    return Object.assign(p, { imap: p.app.monitor.imap?.port ?? 0 });
  }

  it('a server that greets with PREAUTH is not used', async () => {
    const srv = await fakeServer('* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+] logged in as root', (l) => `${l.split(' ')[0]} OK done\r\n`);
    open.push(srv);
    const p = await proxyTo(srv.port);
    const { c } = await raw(p.imap);
    expect(await c.cmd('a', 'LOGIN alice pw')).toMatch(/^a NO \[UNAVAILABLE\]/m);
    expect(srv.seen).toEqual([]);
    expect(await upstreamErrors(p, 'imap')).toEqual(['server_preauth']);
  });

  // The STARTTLS reply is followed, in the same segment, by a forged tagged OK for the LOGIN to come.
  it('a reply injected after the server\'s OK to STARTTLS is dropped, not taken as the LOGIN answer', async () => {
    const pems = { key: '', cert: '' };
    const srv = await fakeServer('* OK [CAPABILITY IMAP4rev1 STARTTLS LITERAL+] ready', (l) => {
      const tag = l.split(' ')[0];
      if (/ CAPABILITY$/.test(l)) return `* CAPABILITY IMAP4rev1 LITERAL+\r\n${tag} OK done\r\n`;
      if (/ LOGIN /.test(l)) return `${tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`;
      return `${tag} OK done\r\n`;
    }, { line: /^P0 STARTTLS/, reply: 'P0 OK Begin TLS negotiation now.\r\nP3 OK [CAPABILITY IMAP4rev1 LITERAL+] Logged in\r\n', pems });
    open.push(srv);
    const p = await proxyTo(srv.port, 'starttls');
    Object.assign(pems, posternPems(p));
    const { c } = await raw(p.imap);
    expect(await c.cmd('a', 'LOGIN alice pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/m);
    expect(srv.seen.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['P0 STARTTLS', 'P1 CAPABILITY', 'P2 ID', 'P3 LOGIN']);
    expect(await upstreamErrors(p, 'imap')).toEqual(['server_starttls_junk']);
  });

  it('a server without LITERAL+ after login is not used', async () => {
    const srv = await fakeServer('* OK [CAPABILITY IMAP4rev1] ready', (l) => {
      const tag = l.split(' ')[0];
      return / LOGIN /.test(l) ? `${tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n` : `${tag} OK done\r\n`;
    });
    open.push(srv);
    const p = await proxyTo(srv.port);
    const { c } = await raw(p.imap);
    expect(await c.cmd('a', 'LOGIN alice pw')).toMatch(/^a NO \[UNAVAILABLE\]/m);
    expect(await upstreamErrors(p, 'imap')).toEqual(['server_no_literal_plus']);
  });
});
