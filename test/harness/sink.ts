// A real SMTP/LMTP server (smtp-server) standing in for the downstream mail server; records what it receives.
import { SMTPServer } from 'smtp-server';
import type net from 'node:net';

export interface Received {
  from: string;
  to: string[];
  raw: Buffer;
}

export interface SinkBehaviour {
  /** Reply code for RCPT of a given address (default 250). */
  rcpt?: (address: string) => number | undefined;
  /** Reply code after DATA (default 250). */
  data?: (msg: Received) => number | undefined;
}

export interface Sink {
  port: number;
  messages: Received[];
  behaviour: SinkBehaviour;
  close(): Promise<void>;
}

export async function startSink(opts: { lmtp?: boolean; port?: number; behaviour?: SinkBehaviour } = {}): Promise<Sink> {
  const messages: Received[] = [];
  const behaviour: SinkBehaviour = opts.behaviour ?? {};
  const server = new SMTPServer({
    lmtp: opts.lmtp,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onRcptTo(addr, _s, cb) {
      const code = behaviour.rcpt?.(addr.address);
      if (code && code >= 400) {
        const e = new Error(code >= 500 ? '5.1.1 no such user' : '4.2.1 try later') as Error & { responseCode: number };
        e.responseCode = code;
        return cb(e);
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const msg: Received = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
        };
        const code = behaviour.data?.(msg);
        if (code && code >= 400) {
          const e = new Error(code >= 500 ? '5.6.0 refused' : '4.3.0 later') as Error & { responseCode: number };
          e.responseCode = code;
          return cb(e);
        }
        messages.push(msg);
        cb(null, 'queued');
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      resolve(((server as unknown as { server: net.Server }).server.address() as net.AddressInfo).port);
    });
  });
  return {
    port,
    messages,
    behaviour,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
