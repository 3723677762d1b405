// The submission monitor proxy over real sockets: nodemailer through Postern to Dovecot's submission service, which
// relays to an SMTP sink; login events without passwords; what Postern answers itself before AUTH (530, 500, 500
// 5.5.6, too many bad commands) and that none of it reaches Dovecot; the STARTTLS injection; AUTH in the clear only
// from loopback; a blocked address and user; the commands checked after login and the message's bare newlines made
// CRLF; a server that cannot be used; the audit trail of an audited user's MAIL FROM, RCPT TO and message (size, Message-ID, the server's replies) and
// `postern audit`, and no trail for a user who is not audited.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, startTestPostern, tempDir, TEST_STORE, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { closedAfterEach, fakeServer, storedEvents } from '../harness/proxy-suite.ts';
import { startDovecot, type Dovecot } from '../harness/dovecot.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { inProcess } from '../harness/cli.ts';
import { addPolicy } from '../../src/policy/admin.ts';

const why = await missing('dovecot', 'dovecot-submission');

const ALICE = 'alice@localhost';
const ALICE_PW = 'Correct-Horse-7';
const BOB = 'bob@localhost';
const BOB_PW = 'Bob-Secret-9';
const plain = (u: string, p: string) => Buffer.from(`\0${u}\0${p}`).toString('base64');

const open = closedAfterEach();

/** An address of this machine that is not loopback: a client from it is not trusted with AUTH in the clear. */
const EXTERNAL = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === 'IPv4')?.address;

describe.skipIf(why)('submission proxy in front of Dovecot', () => {
  let dv: Dovecot;
  let sink: Sink;
  beforeAll(async () => {
    sink = await startSink();
    dv = await startDovecot({
      users: { alice: ALICE_PW, bob: BOB_PW },
      authFailureDelayS: 0,
      noPenalty: true,
      submission: { relayPort: sink.port },
      extra: 'login_trusted_networks = 127.0.0.1/32',
    });
  });
  afterAll(async () => {
    await dv?.stop();
    await sink?.close();
  });

  interface Running extends TestPostern {
    sub: number;
    subs: number;
    /** The config file the CLI reads: the same store as the running Postern. */
    file: string;
  }

  async function proxy(more = '', audit: string[] = []): Promise<Running> {
    const dir = tempDir();
    const pgs = TEST_STORE === 'postgres' ? await freshPgSchema() : undefined;
    const toml =
      `[monitor.submission]\nenabled = true\nfailure_delay_ms = 0\nmax_bad_commands = 4\n${more}\n` +
      `[monitor.submission.upstream]\nhost = "127.0.0.1"\nport = ${dv.submissionPort}\n` +
      `[monitor.audit]\nusers = ${JSON.stringify(audit)}\n` +
      (pgs ? `[store]\nurl = ${JSON.stringify(pgs.url)}\n` : '');
    // The store is given in the config itself, so that the CLI reads the same one.
    const p = await startTestPostern(toml, { dir, store: 'sqlite' });
    open.push({ close: async () => (await p.close(), await pgs?.drop()) });
    const file = path.join(dir, 'postern.toml');
    fs.writeFileSync(file, `data_dir = ${JSON.stringify(dir)}\n${toml}`);
    const m = p.app.monitor.submission;
    if (!m?.tlsPort) throw new Error('submission proxy not listening');
    return Object.assign(p, { sub: m.port, subs: m.tlsPort, file });
  }

  async function raw(port: number, localAddress = '127.0.0.1'): Promise<RawSmtp> {
    const c = await RawSmtp.connect(port, { localAddress });
    open.push(c);
    return c;
  }

  function transport(port: number, user: string, pass: string, o: { localAddress?: string; secure?: boolean; method?: string } = {}) {
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      secure: o.secure ?? false,
      requireTLS: !o.secure,
      auth: { user, pass },
      authMethod: o.method,
      localAddress: o.localAddress,
      tls: { rejectUnauthorized: false },
    });
    open.push(t);
    return t;
  }

  const message = (n: number, to: string[] = ['carol@example.org']) => ({
    from: ALICE,
    to,
    subject: `figures ${n}`,
    messageId: `<fig-${n}@localhost>`,
    text: `The figures, part ${n}.\n.\nA line of one dot above.\n`,
  });

  it('relays a message from nodemailer through Postern and Dovecot to the relay host, over STARTTLS and implicit TLS', async () => {
    const p = await proxy();
    const before = sink.messages.length;
    const mark = dv.log().length;
    const info = await transport(p.sub, ALICE, ALICE_PW, { localAddress: '127.0.0.9' }).sendMail(message(1));
    expect(info.accepted).toEqual(['carol@example.org']);
    await until(() => sink.messages.length > before, 10_000, 'the message at the relay host');
    const got = sink.messages[before];
    expect(got.from).toBe(ALICE);
    expect(got.to).toEqual(['carol@example.org']);
    expect(got.raw.toString()).toContain('Message-ID: <fig-1@localhost>');
    expect(got.raw.toString()).toContain('\r\n.\r\nA line of one dot above.');
    // XCLIENT told Dovecot the client's own address.
    expect(dv.log().slice(mark)).toMatch(/Login: user=<alice@localhost>, method=PLAIN, rip=127\.0\.0\.9/);

    await transport(p.subs, ALICE, ALICE_PW, { secure: true, method: 'LOGIN' }).sendMail(message(2));
    await until(() => sink.messages.length > before + 1, 10_000, 'the second message');
    const ok = await storedEvents(p, 'auth.succeeded');
    expect(ok.map((e) => [e.data.protocol, e.data.user, e.data.method])).toEqual([
      ['submission', ALICE, 'AUTH PLAIN'],
      ['submission', ALICE, 'AUTH LOGIN'],
    ]);
    expect(ok[0].ip).toBe('127.0.0.9');
    expect((ok[0].data.tls as { version: string }).version).toMatch(/^TLS/);
  });

  it('a wrong password gets 535 and an auth.failed event; the password is in no event and no log', async () => {
    const p = await proxy();
    const WRONG = 'Not-The-Password-42';
    await expect(transport(p.sub, BOB, WRONG).sendMail({ ...message(3), from: BOB })).rejects.toMatchObject({ responseCode: 535 });
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].data).toMatchObject({ protocol: 'submission', user: BOB, method: 'AUTH PLAIN' });
    const all = await p.app.store.db.selectFrom('events').select(['data']).execute();
    for (const e of all) expect(e.data).not.toContain(WRONG);
    expect(dv.log()).not.toContain(WRONG);
  });

  it('answers before AUTH itself: 530 for MAIL, 500 for an unknown command, 500 5.5.6 for a long line, 421 after too many; nothing reaches Dovecot', async () => {
    const p = await proxy();
    const mark = dv.log().length;
    const c = await raw(p.sub);
    expect(await c.reply()).toMatch(/^220 postern\.localhost ESMTP/);
    c.write('EHLO client.example\r\n');
    const ehlo = await c.reply();
    expect(ehlo).toMatch(/^250-postern\.localhost\r\n/);
    for (const k of ['SIZE', 'PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'STARTTLS', 'AUTH PLAIN LOGIN']) expect(ehlo).toContain(k);
    c.write('NOOP\r\nRSET\r\nHELP\r\n');
    expect(await c.replies(3)).toEqual(['250 2.0.0 OK\r\n', '250 2.0.0 OK\r\n', expect.stringMatching(/^214 /)]);
    c.write('MAIL FROM:<alice@localhost>\r\n');
    expect(await c.reply()).toBe('530 5.7.0 Authentication required\r\n');
    c.write('XCLIENT ADDR=10.0.0.1\r\n');
    expect(await c.reply()).toBe('500 5.5.2 Unknown command\r\n');
    c.write(`EHLO ${'a'.repeat(5000)}\r\nRCPT TO:<carol@example.org>\r\n`);
    expect(await c.replies(2)).toEqual(['500 5.5.6 Command line too long\r\n', '530 5.7.0 Authentication required\r\n']);
    expect(await c.reply()).toBe('421 4.7.0 Too many bad commands, closing connection\r\n');
    expect(await c.waitClosed()).toBe(true);
    const errors = await storedEvents(p, 'submission.protocol_error');
    expect(errors.map((e) => e.data.kind)).toEqual(['needs_login', 'unknown_command', 'line_too_long', 'needs_login', 'too_many_bad_commands']);
    await new Promise((r) => setTimeout(r, 100));
    expect(dv.log().slice(mark)).not.toMatch(/submission/);
    expect(sink.messages.every((m) => !m.raw.toString().includes('client.example'))).toBe(true);
  });

  it('drops what was pipelined after STARTTLS, and TLS then starts from a clean slate', async () => {
    const p = await proxy();
    const c = await raw(p.sub);
    await c.reply();
    c.write('EHLO client.example\r\n');
    await c.reply();
    c.write(`STARTTLS\r\nAUTH PLAIN ${plain(ALICE, ALICE_PW)}\r\nMAIL FROM:<alice@localhost>\r\n`);
    expect(await c.reply()).toBe('220 2.0.0 Ready to start TLS\r\n');
    await c.starttls();
    // The EHLO before TLS is forgotten (RFC 3207 §4.2): AUTH first is out of sequence.
    c.write(`AUTH PLAIN ${plain(ALICE, ALICE_PW)}\r\n`);
    expect(await c.reply()).toBe('503 5.5.1 EHLO first\r\n');
    c.write('EHLO client.example\r\n');
    const ehlo = await c.reply();
    expect(ehlo).toMatch(/^250-postern\.localhost/);
    expect(ehlo).not.toContain('STARTTLS');
    expect(c.unread).toBe('');
    const errors = await storedEvents(p, 'submission.protocol_error');
    expect(errors.map((e) => e.data.kind)).toEqual(['starttls_injection', 'sequence']);
    expect(await storedEvents(p, 'auth.succeeded')).toHaveLength(0);
  });

  it.skipIf(!EXTERNAL)('offers and takes AUTH in the clear only from loopback, unless plaintext_auth', async () => {
    const p = await proxy();
    const c = await raw(p.sub, EXTERNAL);
    await c.reply();
    c.write('EHLO client.example\r\n');
    const ehlo = await c.reply();
    expect(ehlo).toContain('STARTTLS');
    expect(ehlo).not.toContain('AUTH');
    c.write(`AUTH PLAIN ${plain(ALICE, ALICE_PW)}\r\n`);
    expect(await c.reply()).toBe('538 5.7.11 Encryption required for requested authentication mechanism\r\n');
    c.write('STARTTLS\r\n');
    await c.reply();
    await c.starttls();
    c.write('EHLO client.example\r\n');
    expect(await c.reply()).toContain('AUTH PLAIN LOGIN');
    c.write(`AUTH PLAIN ${plain(ALICE, ALICE_PW)}\r\n`);
    expect(await c.reply()).toMatch(/^235 /);

    const q = await proxy('plaintext_auth = true');
    const d = await raw(q.sub, EXTERNAL);
    await d.reply();
    d.write('EHLO client.example\r\n');
    expect(await d.reply()).toContain('AUTH PLAIN LOGIN');
  });

  it('refuses a client whose address a live block policy names, at connect', async () => {
    const p = await proxy();
    await addPolicy(p.app.store.db, { target_kind: 'ip', target: '127.0.0.5', action: 'block', reason: 'test block', ttl_s: 600 });
    await p.app.policies.load();
    const c = await raw(p.sub, '127.0.0.5');
    expect(await c.reply()).toBe('554 5.7.1 Service not available from your address\r\n');
    expect(await c.waitClosed()).toBe(true);
    expect((await storedEvents(p, 'submission.connect.refused'))[0]).toMatchObject({ ip: '127.0.0.5' });

    // A block on the user: refused at AUTH, without asking Dovecot.
    await addPolicy(p.app.store.db, { target_kind: 'user', target: BOB, action: 'block', reason: 'test user block', ttl_s: 600 });
    await p.app.policies.load();
    const mark = dv.log().length;
    const d = await raw(p.sub, '127.0.0.6');
    await d.reply();
    d.write('EHLO client.example\r\n');
    await d.reply();
    d.write(`AUTH PLAIN ${plain(BOB, BOB_PW)}\r\n`);
    expect(await d.reply()).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect((await storedEvents(p, 'submission.login.refused'))[0]).toMatchObject({ ip: '127.0.0.6', data: { user: BOB } });
    expect(dv.log().slice(mark)).not.toMatch(/bob@localhost/);
  });

  it('after login: each command checked, BDAT refused with 502, the message relayed with bare newlines made CRLF', async () => {
    const p = await proxy();
    const before = sink.messages.length;
    const c = await raw(p.sub);
    await c.reply();
    c.write('EHLO client.example\r\n');
    await c.reply();
    c.write(`AUTH PLAIN ${plain(ALICE, ALICE_PW)}\r\n`);
    expect(await c.reply()).toMatch(/^235 /);
    c.write('EHLO again.example\r\n');
    const ehlo = await c.reply();
    expect(ehlo).toMatch(/^250-postern\.localhost/);
    expect(ehlo).not.toMatch(/AUTH|STARTTLS|XCLIENT|CHUNKING/);
    c.write('BDAT 10 LAST\r\nMAIL FROM:<alice@localhost> SMTPUTF8\r\nMAIL FROM:<alice@localhost> BODY=8BITMIME\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n');
    const [bdat, badParam, mail, rcpt, data] = await c.replies(5);
    expect(bdat).toBe('502 5.5.1 BDAT not supported, use DATA\r\n');
    expect(badParam).toMatch(/^555 5\.5\.4/);
    expect(mail).toMatch(/^250 /);
    expect(rcpt).toMatch(/^250 /);
    expect(data).toMatch(/^354 /);
    c.write('Subject: bare\nMessage-ID: <bare-1@localhost>\n\nline one\n..dot\r\n.\r\nQUIT\r\n');
    expect(await c.reply()).toMatch(/^250 /);
    expect(await c.reply()).toMatch(/^221 /);
    await until(async () => (await storedEvents(p, 'submission.close')).length, 5_000, 'the session closed');
    expect((await storedEvents(p, 'submission.close'))[0].data).toMatchObject({ user: ALICE, logged_in: true, reason: 'quit' });
    await until(() => sink.messages.length > before, 10_000, 'the message at the relay host');
    expect(sink.messages[before].raw.toString()).toMatch(/Subject: bare\r\nMessage-ID: <bare-1@localhost>\r\n\r\nline one\r\n\.dot\r\n$/);
    const kinds = (await storedEvents(p, 'submission.protocol_error')).map((e) => e.data.kind);
    expect(kinds).toEqual(['refused', 'refused', 'bare_newline']);
  });

  it('a server that does not greet with 220 or offers no AUTH PLAIN is not used: 454, and an upstream_error', async () => {
    for (const [greeting, ehlo, reason] of [
      ['554 5.3.2 go away', '', 'server_greeting'],
      ['220 fake ESMTP', '250-fake\r\n250 AUTH CRAM-MD5\r\n', 'server_auth'],
    ]) {
      const fake = await fakeServer(greeting, (l) => (/^EHLO /.test(l) ? ehlo : '500 5.5.2 what\r\n'));
      open.push(fake);
      const p = await startTestPostern(`[monitor.submission]\nenabled = true\nfailure_delay_ms = 0\n[monitor.submission.upstream]\nhost = "127.0.0.1"\nport = ${fake.port}\n`);
      open.push(p);
      const c = await raw(p.app.monitor.submission!.port);
      await c.reply();
      c.write('EHLO client.example\r\n');
      await c.reply();
      c.write(`AUTH PLAIN ${plain(ALICE, ALICE_PW)}\r\n`);
      expect(await c.reply()).toBe('454 4.7.0 Temporary authentication failure, try again later\r\n');
      expect(fake.seen.some((l) => l.startsWith('AUTH'))).toBe(false);
      expect((await storedEvents(p, 'submission.upstream_error')).map((e) => e.data.reason)).toEqual([reason]);
      expect(await storedEvents(p, 'auth.failed')).toHaveLength(0);
    }
  });

  it("records an audited user's MAIL FROM, RCPT TO and message with the server's replies; postern audit tells it; nobody else is recorded", async () => {
    sink.behaviour.rcpt = (a) => (a === 'nobody@example.org' ? 550 : undefined);
    try {
      const p = await proxy('', [ALICE]);
      await transport(p.sub, ALICE, ALICE_PW).sendMail(message(7, ['carol@example.org', 'dave@example.org', 'nobody@example.org']));
      await transport(p.sub, BOB, BOB_PW).sendMail({ ...message(8), from: BOB });
      await until(async () => (await storedEvents(p, 'audit.session')).filter((e) => e.data.phase === 'end').length >= 1, 10_000, 'the audited session ended');
      const cmds = (await storedEvents(p, 'audit.command')).map((e) => e.data);
      expect(cmds.every((d) => d.user === ALICE && d.protocol === 'submission')).toBe(true);
      const [mail, ...rest] = cmds;
      expect(mail).toMatchObject({ command: 'MAIL FROM', from: ALICE, code: 250 });
      const rcpts = rest.filter((d) => d.command === 'RCPT TO');
      expect(rcpts.map((d) => [d.to, d.code])).toEqual([
        ['carol@example.org', 250],
        ['dave@example.org', 250],
        ['nobody@example.org', 550],
      ]);
      const data = rest.find((d) => d.command === 'DATA')!;
      expect(data).toMatchObject({ message_id: '<fig-7@localhost>', code: 250 });
      expect(Number(data.size)).toBeGreaterThan(200);

      const text = await inProcess(['audit', ALICE, '--config', p.file]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/submission login from 127\.0\.0\.1/);
      expect(text.stdout).toContain('MAIL FROM <alice@localhost>: 250');
      expect(text.stdout).toContain('RCPT TO <nobody@example.org>: 550');
      expect(text.stdout).toMatch(/DATA \d+ octets, Message-ID <fig-7@localhost>: 250/);
      expect((await inProcess(['audit', BOB, '--config', p.file])).stdout).toMatch(/^no audit trail/);
    } finally {
      sink.behaviour.rcpt = undefined;
    }
  });
});
