// What the monitor proxy tests share: connections closed after each test, a private Dovecot for a describe block,
// the events a running Postern stored, and a hostile server that Dovecot cannot be made to imitate.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startDovecot, type Dovecot } from './dovecot.ts';
import type { TestPostern } from './postern.ts';

export interface Closable {
  close(): unknown;
}

/** Things to close after each test of the file, newest first. */
export function closedAfterEach(): Closable[] {
  const open: Closable[] = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });
  return open;
}

/**
 * A Dovecot for the describe block this is called in, with these users, with neither its failure delay nor its
 * auth penalty (the tests are about Postern's). Dovecot believes the client address Postern forwards (ID,
 * XCLIENT) only from login_trusted_networks. `extra` adds config lines; `setup` runs once it is up.
 */
export function dovecotForSuite(
  users: Record<string, string>,
  o: { extra?: string; setup?: (dv: Dovecot) => Promise<void> } = {},
): () => Dovecot {
  let dv: Dovecot | undefined;
  beforeAll(async () => {
    dv = await startDovecot({ users, authFailureDelayS: 0, noPenalty: true, extra: ['login_trusted_networks = 127.0.0.1/32', o.extra].filter(Boolean).join('\n') });
    await o.setup?.(dv);
  });
  afterAll(async () => {
    await dv?.stop();
  });
  return () => {
    if (!dv) throw new Error('dovecot is not running: dovecotForSuite() must be called inside a describe block');
    return dv;
  };
}

/** The stored events of one type, oldest first, with their data parsed. */
export async function storedEvents(p: TestPostern, type: string) {
  await p.app.sink.flush();
  const rows = await p.app.store.db.selectFrom('events').selectAll().where('type', '=', type as never).orderBy('id').execute();
  return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
}

export interface FakeServer {
  port: number;
  /** Every line Postern sent, in order. */
  seen: string[];
  close(): void;
}

/**
 * A hostile mailbox server. Each line from Postern is answered by `reply(line)`. With `starttls`, the line it
 * matches is answered by `starttls.reply` in the clear (a test puts a forged answer behind the agreement, in the
 * same segment) and the connection goes on inside TLS with `starttls.pems` (filled in once Postern's are known).
 */
export async function fakeServer(
  greeting: string,
  reply: (line: string) => string,
  starttls?: { line: RegExp; reply: string; pems: { key: string; cert: string } },
): Promise<FakeServer> {
  const seen: string[] = [];
  const server = net.createServer((rawSock) => {
    let sock: net.Socket = rawSock;
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i + 1).trimEnd();
        buf = buf.slice(i + 1);
        seen.push(line);
        if (starttls?.line.test(line)) {
          rawSock.write(starttls.reply);
          rawSock.removeListener('data', onData);
          sock = new tls.TLSSocket(rawSock, { isServer: true, key: starttls.pems.key, cert: starttls.pems.cert });
          sock.on('data', onData);
          sock.on('error', () => undefined);
          return;
        }
        sock.write(reply(line));
      }
    };
    rawSock.on('data', onData);
    rawSock.on('error', () => undefined);
    rawSock.write(greeting + '\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, seen, close: () => server.close() };
}

/** The reasons of the `<protocol>.upstream_error` events, oldest first. */
export async function upstreamErrors(p: TestPostern, protocol: 'imap' | 'pop3'): Promise<string[]> {
  return (await storedEvents(p, `${protocol}.upstream_error`)).map((e) => String(e.data.reason));
}

/** The key and certificate a test Postern serves, for a fake server to use too. */
export function posternPems(p: TestPostern): { key: string; cert: string } {
  return { key: fs.readFileSync(path.join(p.dir, 'tls', 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(p.dir, 'tls', 'cert.pem'), 'utf8') };
}
