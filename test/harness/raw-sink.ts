// A minimal SMTP/LMTP server on a raw TCP socket, standing in for the downstream: it records every command line
// and the exact DATA bytes up to and including CRLF.CRLF, so tests can assert on what went over the wire.
import net from 'node:net';
import tls from 'node:tls';

export interface RawTransaction {
  from: string;
  to: string[];
  /** Exact bytes after the 354 reply, up to and including the terminating CRLF.CRLF. */
  wire: Buffer;
  /** Whether the transaction ran inside TLS. */
  tls: boolean;
  /** The reply given after the dot; 'drop' (closed instead), 'pending' or 'lost' (connection gone first). */
  reply: string;
  /** When the reply was written (ms since the epoch). */
  at: number;
}

/** What to answer after the final dot: a reply code, a full reply line, or drop the connection without a reply. */
export type DataAnswer = number | string | { drop: true } | { delayMs: number; code?: number };

export interface RawSinkOptions {
  port?: number;
  lmtp?: boolean;
  /** Extra EHLO keywords (PIPELINING is never offered, so every command waits for its reply). */
  capabilities?: string[];
  /** Offer STARTTLS with this key/cert; `inject` is sent right after the 220 in the same segment (T-05). */
  starttls?: { key: string; cert: string; inject?: string };
  rcpt?: (address: string) => number | undefined;
  data?: (tx: RawTransaction) => DataAnswer | undefined;
}

export interface RawSink {
  port: number;
  transactions: RawTransaction[];
  /** Every command line received, in order, with a connection number: `3 MAIL FROM:<a@b>`. */
  commands: string[];
  options: RawSinkOptions;
  close(): Promise<void>;
}

const TERM = Buffer.from('\r\n.\r\n');

export async function startRawSink(options: RawSinkOptions = {}): Promise<RawSink> {
  const transactions: RawTransaction[] = [];
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  let conns = 0;

  const server = net.createServer((plain) => {
    const n = ++conns;
    sockets.add(plain);
    plain.on('close', () => sockets.delete(plain));
    plain.on('error', () => undefined);
    let sock: net.Socket = plain;
    let secure = false;
    let buf = Buffer.alloc(0);
    let mode: 'cmd' | 'data' | 'busy' = 'cmd';
    let from: string | null = null;
    let to: string[] = [];
    const send = (s: string) => {
      if (!sock.destroyed) sock.write(s);
    };
    const reset = () => {
      from = null;
      to = [];
    };

    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      pump();
    };

    const pump = () => {
      while (mode !== 'busy') {
        if (mode === 'data') {
          // The data may be empty: then the terminator's leading CRLF is the one that ended the DATA command.
          const probe = Buffer.concat([Buffer.from('\r\n'), buf]);
          const at = probe.indexOf(TERM);
          if (at < 0) return;
          const wire = buf.subarray(0, at + 3);
          buf = buf.subarray(at + 3);
          finishData(Buffer.from(wire));
          continue;
        }
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return;
        const line = buf.subarray(0, eol).toString('latin1');
        buf = buf.subarray(eol + 2);
        commands.push(`${n} ${line}`);
        command(line);
      }
    };

    const finishData = (wire: Buffer) => {
      const tx: RawTransaction = { from: from ?? '', to: [...to], wire, tls: secure, reply: '', at: Date.now() };
      transactions.push(tx);
      const answer = options.data?.(tx) ?? 250;
      const code = typeof answer === 'number' ? answer : typeof answer === 'object' && 'code' in answer ? (answer.code ?? 250) : 250;
      const line = typeof answer === 'string' ? answer : code < 300 ? `${code} 2.0.0 Ok: queued` : code < 500 ? `${code} 4.3.0 try later` : `${code} 5.6.0 refused`;
      reset();
      if (typeof answer === 'object' && 'drop' in answer) {
        tx.reply = 'drop';
        sock.destroy();
        return;
      }
      tx.reply = line;
      // LMTP: one reply per accepted recipient (RFC 2033 4.2).
      const out = (options.lmtp ? tx.to.map(() => `${line}\r\n`) : [`${line}\r\n`]).join('');
      if (typeof answer === 'object' && 'delayMs' in answer) {
        mode = 'busy';
        tx.reply = 'pending';
        setTimeout(() => {
          // A reply that could not be written was never given: the client cannot count it as delivered.
          tx.reply = sock.destroyed ? 'lost' : line;
          tx.at = Date.now();
          send(out);
          mode = 'cmd';
          pump();
        }, answer.delayMs);
        return;
      }
      mode = 'cmd';
      send(out);
    };

    const command = (line: string) => {
      const verb = line.split(' ')[0].toUpperCase();
      const arg = /<([^>]*)>/.exec(line)?.[1] ?? '';
      switch (verb) {
        case 'EHLO':
        case 'LHLO': {
          if ((verb === 'LHLO') !== Boolean(options.lmtp)) return send('500 5.5.1 wrong greeting for this protocol\r\n');
          const caps = ['8BITMIME', 'SMTPUTF8', ...(options.capabilities ?? [])];
          if (options.starttls && !secure) caps.push('STARTTLS');
          reset();
          return send(['250-raw-sink', ...caps.slice(0, -1).map((c) => `250-${c}`), `250 ${caps.at(-1)}`].join('\r\n') + '\r\n');
        }
        case 'HELO':
          return send(options.lmtp ? '500 5.5.1 use LHLO\r\n' : '250 raw-sink\r\n');
        case 'STARTTLS': {
          if (!options.starttls || secure) return send('503 5.5.1 not now\r\n');
          // Injected bytes ride in the same segment as the 220; a correct client throws them away (RFC 3207 6).
          plain.write(`220 2.0.0 Ready to start TLS\r\n${options.starttls.inject ?? ''}`);
          plain.off('data', onData);
          buf = Buffer.alloc(0);
          reset();
          const t = new tls.TLSSocket(plain, { isServer: true, key: options.starttls.key, cert: options.starttls.cert });
          t.on('error', () => undefined);
          t.on('secure', () => undefined);
          sock = t;
          secure = true;
          t.on('data', onData);
          return;
        }
        case 'MAIL':
          if (from !== null) return send('503 5.5.1 nested MAIL\r\n');
          from = arg;
          return send('250 2.1.0 Ok\r\n');
        case 'RCPT': {
          if (from === null) return send('503 5.5.1 need MAIL\r\n');
          const code = options.rcpt?.(arg) ?? 250;
          if (code < 300) {
            to.push(arg);
            return send('250 2.1.5 Ok\r\n');
          }
          return send(code < 500 ? `${code} 4.2.1 mailbox busy\r\n` : `${code} 5.1.1 no such user\r\n`);
        }
        case 'DATA':
          if (!to.length) return send('554 5.5.1 no valid recipients\r\n');
          mode = 'data';
          return send('354 End data with <CR><LF>.<CR><LF>\r\n');
        case 'RSET':
          reset();
          return send('250 2.0.0 Ok\r\n');
        case 'NOOP':
          return send('250 2.0.0 Ok\r\n');
        case 'QUIT':
          send('221 2.0.0 Bye\r\n');
          sock.end();
          return;
        default:
          return send('500 5.5.2 unrecognised command\r\n');
      }
    };

    plain.on('data', onData);
    send(`220 raw-sink ${options.lmtp ? 'LMTP' : 'ESMTP'}\r\n`);
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
  return {
    port,
    transactions,
    commands,
    options,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** What a stored message must look like on the wire: CRLF line ends only, dot-stuffed, ended by CRLF.CRLF. */
export function expectedWire(stored: Buffer): Buffer {
  let s = stored.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (s.length && !s.endsWith('\r\n')) s += '\r\n';
  s = s.replace(/^\./gm, '..');
  return Buffer.from(`${s}.\r\n`, 'latin1');
}
