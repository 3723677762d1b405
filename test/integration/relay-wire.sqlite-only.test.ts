// What the relay writes on the downstream wire, captured byte for byte by a raw TCP sink: only CRLF line ends and
// every leading dot doubled, whatever bytes sit in the spool (reliability.md S-09); no envelope value with a line
// break ever becomes a command (C-13); STARTTLS response injection is ignored and required TLS never falls back
// to plaintext (T-05).
import { afterEach, describe, expect, it } from 'vitest';
import { generate } from 'selfsigned';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { expectedWire, startRawSink, type RawSink, type RawSinkOptions } from '../harness/raw-sink.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { missing } from '../harness/services.ts';
import { queueId } from '../../src/core/ids.ts';
import { createTransport } from '../../src/relay/transport.ts';
import { crlfOnly, hasBareNewline } from '../../src/relay/wire.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(o: RawSinkOptions = {}, downstream = ''): Promise<{ p: TestPostern; sink: RawSink }> {
  const sink = await startRawSink(o);
  cleanup.push(() => sink.close());
  const p = await startTestPostern(
    `[relay]\nretry_schedule_s = [3600]\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\nprotocol = "${o.lmtp ? 'lmtp' : 'smtp'}"\n${downstream || 'tls = "none"'}\n`,
  );
  cleanup.push(() => p.close());
  return { p, sink };
}

/**
 * Puts a message into the spool the way the Acceptor does (file fsynced and renamed, rows committed), but with
 * bytes and envelope the gateway would never produce; this is how a release from quarantine or an older queue
 * can hand the relay anything.
 */
async function spoolDirect(p: TestPostern, from: string, to: string[], raw: Buffer): Promise<string> {
  const id = queueId();
  const now = Date.now();
  await p.app.spool.write(id, raw);
  await p.app.spool.syncDir();
  const db = p.app.store.db;
  await db
    .insertInto('messages')
    .values({ id, message_id: null, received_at: now, conn_id: null, client_ip: null, helo: null, mail_from: from, size: raw.length, subject: null, score: 0, symbols: '[]', verdict: '{}', status: 'queued' })
    .execute();
  await db
    .insertInto('recipients')
    .values(to.map((rcpt) => ({ msg_id: id, rcpt, action: 'accept', reasons: '[]', status: 'queued', route: 'downstream', deliver_to: rcpt, attempts: 0, next_attempt_at: now, last_error: null, updated_at: now })))
    .execute();
  p.app.relay!.submit(id);
  return id;
}

async function statuses(p: TestPostern, id: string) {
  const rows = await p.app.store.db.selectFrom('recipients').select(['rcpt', 'status', 'last_error']).where('msg_id', '=', id).orderBy('rcpt').execute();
  return Object.fromEntries(rows.map((r) => [r.rcpt, r]));
}

/** Every line of the DATA bytes ends in CRLF, and every line starting with '.' but the terminator is stuffed. */
function assertCleanWire(wire: Buffer): void {
  const s = wire.toString('latin1');
  expect(hasBareNewline(wire), `bare CR/LF on the wire: ${JSON.stringify(s)}`).toBe(false);
  expect(s.endsWith('\r\n.\r\n')).toBe(true);
  const lines = s.slice(0, -3).split('\r\n');
  for (const l of lines) if (l.startsWith('.')) expect(l.startsWith('..'), `unstuffed line ${JSON.stringify(l)}`).toBe(true);
}

// The smuggling tail of reliability.md 1.1, behind every malformed ending of S-01…S-05, plus dots after bare CR.
const TAIL = 'MAIL FROM:<admin@victim.example>\r\nRCPT TO:<u@victim.example>\r\nDATA\r\nFrom: admin@victim.example\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n';
const HOSTILE = Buffer.from(
  'From: <x@example.org>\r\nTo: <bob@localhost>\r\nSubject: s09\r\n\r\n' +
    ['line1\n.\n', '\n.\r\n', '\r.\r\n', '\r.\r', '\r.\n', '\n.\r', '\r\n.\n', '\r\n\x00.\r\n'].map((end) => `line1${end}${TAIL}`).join('') +
    '.leading\r\n..two\r\nA\r.B\rC\n..D\n.\n.\r',
  'latin1',
);

describe.skipIf(await missing('postgres'))('relay wire bytes', () => {
  for (const lmtp of [false, true]) {
    it(`S-09 (${lmtp ? 'LMTP' : 'SMTP'}): a spooled message with bare CR/LF and leading dots goes out CRLF-only and dot-stuffed`, async () => {
      const { p, sink } = await setup({ lmtp });
      const id = await spoolDirect(p, 'x@example.org', ['bob@localhost', 'carol@localhost'], HOSTILE);
      await until(() => sink.transactions.length === 1, 10_000, 'delivery');
      const tx = sink.transactions[0];
      assertCleanWire(tx.wire);
      expect(tx.wire.toString('latin1')).toBe(expectedWire(HOSTILE).toString('latin1'));
      expect(tx.to).toEqual(['bob@localhost', 'carol@localhost']);
      // One transaction: the smuggled commands stayed data.
      expect(sink.commands.filter((c) => / (MAIL|RCPT|DATA)\b/.test(c))).toEqual(['1 MAIL FROM:<x@example.org>', '1 RCPT TO:<bob@localhost>', '1 RCPT TO:<carol@localhost>', '1 DATA']);
      await until(async () => Object.values(await statuses(p, id)).every((r) => r.status === 'delivered'), 5_000, 'recorded');
    });
  }

  it('S-09 through the gateway: dot lines and bare LF (normalised on input) arrive stuffed and CRLF-only', async () => {
    const { p, sink } = await setup();
    const c = await RawSmtp.connect(p.port);
    await c.reply();
    await c.cmd('EHLO client.example.org');
    expect(await c.cmd('MAIL FROM:<alice@example.org>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<bob@localhost>')).toMatch(/^250/);
    expect(await c.cmd('DATA')).toMatch(/^354/);
    c.write(
      `From: <alice@example.org>\r\nTo: <bob@localhost>\r\nSubject: dots\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <dots@example.org>\r\n\r\n` +
        '..leading dot\r\nbare LF line\nnext line\r\n...\r\n..\r\nend\r\n.\r\n',
    );
    expect(await c.reply()).toMatch(/^250 /);
    c.close();
    await until(() => sink.transactions.length === 1, 10_000, 'delivery');
    const wire = sink.transactions[0].wire;
    assertCleanWire(wire);
    expect(wire.toString('latin1')).toMatch(/\r\n\r\n\.\.leading dot\r\nbare LF line\r\nnext line\r\n\.\.\.\r\n\.\.\r\nend\r\n\.\r\n$/);
  });

  it('C-13: an envelope with a line break never reaches the wire; the recipient stays queued, no DSN', async () => {
    const { p, sink } = await setup();
    const msg = Buffer.from('Subject: c13\r\n\r\nbody\r\n');
    const badFrom = await spoolDirect(p, 'a@example.org>\r\nRCPT TO:<evil@victim.example', ['bob@localhost'], msg);
    const badRcpt = await spoolDirect(p, 'a@example.org', ['bob@localhost', 'carol@localhost>\r\nDATA\r\nevil'], msg);
    await until(async () => (await statuses(p, badRcpt))['bob@localhost'].status === 'delivered', 10_000, 'good recipient delivered');
    const a = await until(async () => {
      const r = (await statuses(p, badFrom))['bob@localhost'];
      return r.status === 'deferred' ? r : null;
    });
    expect(a.last_error).toMatch(/line break/);
    expect((await statuses(p, badRcpt))['carol@localhost>\r\nDATA\r\nevil']).toMatchObject({ status: 'deferred', last_error: expect.stringMatching(/line break/) });
    expect(sink.commands.some((l) => /evil|victim/i.test(l))).toBe(false);
    expect(sink.commands.filter((l) => / MAIL /.test(l))).toEqual([expect.stringMatching(/^\d+ MAIL FROM:<a@example\.org>$/)]);
    expect(sink.transactions.map((t) => t.to)).toEqual([['bob@localhost']]);
    const dsn = await p.app.store.db.selectFrom('messages').select('id').where('verdict', 'like', '%dsn_for%').execute();
    expect(dsn).toEqual([]);
    expect(() => createTransport({ host: '127.0.0.1', port: 25, tls: 'none', name: 'relay.example\r\nMAIL FROM:<x@y>', connectTimeoutMs: 100, commandTimeoutMs: 100 })).toThrow(/EHLO name/);
  });

  it('T-05: bytes injected after the STARTTLS 220 are discarded, capabilities are read again inside TLS', async () => {
    const pems = await generate([{ name: 'commonName', value: 'raw-sink.localhost' }], { keySize: 2048 } as never);
    const { p, sink } = await setup({ starttls: { key: pems.private, cert: pems.cert, inject: '250-fake-capability\r\n250 AUTH PLAIN\r\n' } }, 'tls = "require_starttls"');
    const id = await spoolDirect(p, 'x@example.org', ['bob@localhost'], Buffer.from('Subject: t05\r\n\r\nbody\r\n'));
    await until(() => sink.transactions.length === 1, 10_000, 'delivery over TLS');
    expect(sink.transactions[0].tls).toBe(true);
    const verbs = sink.commands.filter((c) => c.startsWith('1 ')).map((c) => c.slice(2).split(' ')[0]);
    expect(verbs.slice(0, 6)).toEqual(['EHLO', 'STARTTLS', 'EHLO', 'MAIL', 'RCPT', 'DATA']);
    expect(sink.commands.some((c) => /AUTH/.test(c))).toBe(false);
    await until(async () => (await statuses(p, id))['bob@localhost'].status === 'delivered');
  });

  it('T-05: with require_starttls and a downstream that offers no STARTTLS, nothing is sent in plaintext', async () => {
    const { p, sink } = await setup({}, 'tls = "require_starttls"');
    const id = await spoolDirect(p, 'x@example.org', ['bob@localhost'], Buffer.from('Subject: t05\r\n\r\nbody\r\n'));
    const r = await until(async () => {
      const x = (await statuses(p, id))['bob@localhost'];
      return x.status === 'deferred' ? x : null;
    }, 10_000, 'deferral');
    expect(r.last_error).toMatch(/STARTTLS/i);
    expect(sink.transactions).toEqual([]);
    expect(sink.commands.some((c) => / (MAIL|RCPT|DATA)\b/.test(c))).toBe(false);
  });
});

describe('crlfOnly', () => {
  it('leaves CRLF-only data untouched (same buffer) and fixes every bare CR and LF', () => {
    const ok = Buffer.from('a\r\nb\r\n');
    expect(crlfOnly(ok)).toBe(ok);
    expect(crlfOnly(Buffer.from('\na\rb\r\n\rc\n\r')).toString()).toBe('\r\na\r\nb\r\n\r\nc\r\n\r\n');
    expect(hasBareNewline(Buffer.from('x\r'))).toBe(true);
    expect(hasBareNewline(Buffer.from('\nx'))).toBe(true);
  });
});
