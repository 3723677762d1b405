// Helpers for the hostile-input transcripts (smtp-hostile.sqlite-only.test.ts): a gateway relaying to a sink,
// raw sessions, and the checks every row ends with (replies, stored rows, events, spool, still serving).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { expect } from 'vitest';
import { startTestPostern, tempDir, until, type TestPostern } from './postern.ts';
import { startSink, type Received, type Sink } from './sink.ts';
import { RawSmtp } from './smtp-client.ts';

export interface Gw {
  p: TestPostern;
  sink: Sink;
}

/** What the helpers opened; the test file closes it after each test with `closeAll`. */
const cleanup: (() => unknown)[] = [];

export async function closeAll(): Promise<void> {
  for (const c of cleanup.splice(0).reverse()) await c();
}

export function onCleanup(fn: () => unknown): void {
  cleanup.push(fn);
}

// One key pair for every gateway started here, so that each start does not generate a 2048-bit RSA key.
let pems: Promise<{ private: string; cert: string }> | undefined;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A gateway relaying to a sink (or to `downstreamPort`). `victim.example` is one of its domains, so a smuggled transaction would be
 * accepted if it were ever parsed as commands; the score thresholds are out of reach, because these tests
 * are about the protocol and compare the relayed copy byte for byte.
 */
export async function gateway(o: { gateway?: string; greet?: string; downstreamPort?: number } = {}): Promise<Gw> {
  const sink = await startSink();
  cleanup.push(() => sink.close());
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'tls'));
  pems ??= generate([{ name: 'commonName', value: 'postern.localhost' }], { keySize: 2048, days: 30, algorithm: 'sha256' } as never);
  const { private: key, cert } = await pems;
  fs.writeFileSync(path.join(dir, 'tls', 'key.pem'), key);
  fs.writeFileSync(path.join(dir, 'tls', 'cert.pem'), cert);
  const toml = [
    '[gateway]',
    'domains = ["localhost", "victim.example"]',
    o.gateway ?? '',
    '[gateway.greet_pause]',
    o.greet ?? 'unknown_ms = 0\nsuspicious_ms = 0',
    '[analysis.actions]',
    'tag = 1000\nquarantine = 2000\nreject = 3000',
    '[relay]',
    'retry_schedule_s = [3600]',
    '[relay.downstream]',
    `host = "127.0.0.1"\nport = ${o.downstreamPort ?? sink.port}\ntls = "none"`,
  ].join('\n');
  const p = await startTestPostern(toml, { dir });
  cleanup.push(() => p.close());
  return { p, sink };
}

export async function open(gw: Gw, localAddress?: string): Promise<RawSmtp> {
  const c = await RawSmtp.connect(gw.p.port, { localAddress });
  cleanup.push(() => c.close());
  expect(await c.reply()).toMatch(/^220 postern\.localhost ESMTP/);
  return c;
}

export async function hello(gw: Gw, localAddress?: string): Promise<RawSmtp> {
  const c = await open(gw, localAddress);
  expect(await c.cmd('EHLO client.example')).toMatch(/^250-postern\.localhost/);
  return c;
}

/** MAIL, RCPT and DATA, each answered before the next is sent. */
export async function envelope(c: RawSmtp, from = 'sender@example.org', to = 'bob@localhost'): Promise<void> {
  expect(await c.cmd(`MAIL FROM:<${from}>`)).toBe('250 2.1.0 Accepted\r\n');
  expect(await c.cmd(`RCPT TO:<${to}>`)).toBe('250 2.1.5 Accepted\r\n');
  expect(await c.cmd('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
}

export const QUEUED = /^250 2\.0\.0 Ok: queued as ([0-9A-Z]{20})\r\n$/;

/** No reply is left unread: whatever was sent got exactly the replies the test read. */
export async function nothingMore(c: RawSmtp): Promise<void> {
  await sleep(80);
  expect(c.unread).toBe('');
}

export async function closedByServer(c: RawSmtp): Promise<void> {
  expect(await c.waitClosed(3000)).toBe(true);
}

export async function stored(gw: Gw) {
  return gw.p.app.store.db.selectFrom('messages').select(['id', 'mail_from', 'subject']).orderBy('received_at').execute();
}

/** The events of one type, their data parsed. */
export async function events(gw: Gw, type: string): Promise<Record<string, unknown>[]> {
  await gw.p.app.sink.flush();
  const rows = await gw.p.app.store.db.selectFrom('events').select(['data']).where('type', '=', type).execute();
  return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
}

export async function protocolErrors(gw: Gw, kind: string): Promise<Record<string, unknown>[]> {
  return (await events(gw, 'smtp.protocol_error')).filter((e) => e.kind === kind);
}

export function tmpEmpty(gw: Gw): void {
  expect(fs.readdirSync(path.join(gw.p.dir, 'spool', 'tmp'))).toEqual([]);
}

/** The relayed copy of a queued message, without the Received header the gateway added. */
export async function relayed(gw: Gw, id: string): Promise<Received> {
  const m = await until(() => gw.sink.messages.find((x) => x.raw.toString('latin1').includes(` id ${id}`)), 10_000, `relay of ${id}`);
  return { ...m, raw: Buffer.from(m.raw.toString('latin1').replace(/^Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n/, ''), 'latin1') };
}

export const isSmuggled = (m: { mail_from: string; subject: string | null }) => m.mail_from === 'admin@victim.example' || m.subject === 'smuggled';

/**
 * The end of every row: exactly `accepted` messages were taken and none of them is a smuggled one, nothing is
 * half-written in the spool, and a normal message on a new connection is still accepted and relayed.
 */
export async function afterwards(gw: Gw, accepted: number, localAddress?: string): Promise<void> {
  const before = await stored(gw);
  expect(before).toHaveLength(accepted);
  expect(before.filter(isSmuggled)).toEqual([]);
  tmpEmpty(gw);
  const c = await hello(gw, localAddress);
  await envelope(c, 'after@example.org');
  c.write('From: after@example.org\r\nSubject: afterwards\r\n\r\nstill here\r\n.\r\n');
  const id = QUEUED.exec(await c.reply())![1];
  expect(await c.cmd('QUIT')).toMatch(/^221 /);
  expect((await relayed(gw, id)).raw.toString('latin1')).toBe('From: after@example.org\r\nSubject: afterwards\r\n\r\nstill here\r\n');
  const after = await stored(gw);
  expect(after).toHaveLength(accepted + 1);
  await until(() => gw.sink.messages.length === accepted + 1, 10_000, 'every accepted message relayed');
  expect(gw.sink.messages.filter((m) => m.from === 'admin@victim.example' || /^Subject: smuggled/m.test(m.raw.toString('latin1')))).toEqual([]);
  tmpEmpty(gw);
}


/** The first flight of a TLS client: a real ClientHello, captured from node:tls. */
export function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const t = tls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'postern.localhost' });
      t.on('error', () => undefined);
    });
    srv.on('error', reject);
  });
}
