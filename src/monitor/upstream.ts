// The connection to the mailbox server behind a monitor proxy, whatever the protocol: connect (plain or implicit
// TLS), upgrade after the protocol's STARTTLS, and read the server's lines before login with a deadline.
import net from 'node:net';
import tls from 'node:tls';

export interface UpstreamTarget {
  host: string;
  port: number;
  tls: 'none' | 'starttls' | 'implicit';
  tls_verify: boolean;
}

/** A protocol's upstream settings: where the server is, and how the login to it goes. */
export interface UpstreamConfig extends UpstreamTarget {
  forward_client_ip: boolean;
  timeout_s: number;
}

/** How Postern's own login to the server ended. */
export type LoginResult =
  | {
      kind: 'ok';
      socket: net.Socket;
      /** The server's answer to the login, as the protocol passes it on. */
      text: string;
      /** What the server advertises after login. */
      capabilities: string[];
      /** Bytes that came after the last answer, to pass on first. */
      rest: Buffer;
    }
  | { kind: 'rejected'; text: string }
  | { kind: 'unavailable'; reason: string; detail?: string };

/** The server connection during a login; socket and reader change at the STARTTLS upgrade. */
export interface UpstreamConn {
  socket: net.Socket;
  reader: LineReader;
  deadline: number;
}

/** The server cannot be used for this login: unreachable, slow, or unsafe. `reason` goes into the upstream_error event. */
export class Unavailable extends Error {
  constructor(
    readonly reason: string,
    readonly detail?: string,
  ) {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}

const MAX_LINE = 65_536;

/** Reads the server's lines before login; nothing here is passed to the client unchecked. */
export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private ended: Error | null = null;
  private readonly onData = (d: Buffer) => {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.wake?.();
  };
  private readonly onEnd = (err?: Error) => {
    this.ended = err ?? new Error('connection closed');
    this.wake?.();
  };

  constructor(
    readonly socket: net.Socket,
    private readonly deadline: number,
  ) {
    socket.on('data', this.onData);
    socket.on('error', this.onEnd);
    socket.on('close', () => this.onEnd());
  }

  async line(): Promise<string> {
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.buf.toString('latin1', 0, lf).replace(/\r$/, '');
        this.buf = this.buf.subarray(lf + 1);
        return line;
      }
      if (this.buf.length > MAX_LINE) throw new Unavailable('server_protocol', 'line too long');
      if (this.ended) throw new Unavailable('server_closed', this.ended.message);
      const left = this.deadline - Date.now();
      if (left <= 0) throw new Unavailable('server_timeout');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  /** Stops reading; whatever was read past the last line is returned. */
  detach(): Buffer {
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('error', this.onEnd);
    // Until the next owner listens, an error must not go unhandled (it would end the process).
    this.socket.on('error', () => undefined);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}

export function connect(cfg: UpstreamTarget, deadline: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const opts = { host: cfg.host, port: cfg.port };
    const s =
      cfg.tls === 'implicit'
        ? tls.connect({ ...opts, servername: net.isIP(cfg.host) ? undefined : cfg.host, rejectUnauthorized: cfg.tls_verify })
        : net.connect(opts);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Unavailable('server_timeout', 'connect'));
    }, Math.max(1, deadline - Date.now()));
    s.once(cfg.tls === 'implicit' ? 'secureConnect' : 'connect', () => {
      clearTimeout(t);
      s.removeAllListeners('error');
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(new Unavailable('server_unreachable', err.message));
    });
  });
}

/**
 * The TLS handshake after the server agreed to STARTTLS/STLS. Anything the server sent after its agreement came
 * before the handshake, so nobody can vouch for it: it is dropped and reported (IM-10), never read inside TLS.
 */
export async function upgrade(c: UpstreamConn, cfg: UpstreamTarget, onWarning: (reason: string, detail: string) => void): Promise<UpstreamConn> {
  const r = c.reader;
  const junk = r.detach();
  if (junk.length) onWarning('server_starttls_junk', `${junk.length} octets after the STARTTLS reply dropped`);
  const plain = r.socket;
  plain.removeAllListeners('close');
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const t = tls.connect({ socket: plain, servername: net.isIP(cfg.host) ? undefined : cfg.host, rejectUnauthorized: cfg.tls_verify }, () => resolve(t));
    t.once('error', (err) => reject(new Unavailable('server_tls', err.message)));
  });
  c.socket = socket;
  c.reader = new LineReader(socket, c.deadline);
  return c;
}

/**
 * Runs a protocol's login steps on a new server connection within cfg.timeout_s. Whatever goes wrong on the way
 * closes the connection and ends as `unavailable`, with the reason for the upstream_error event.
 */
export async function loginUpstream(cfg: UpstreamConfig, steps: (c: UpstreamConn) => Promise<LoginResult>): Promise<LoginResult> {
  const deadline = Date.now() + cfg.timeout_s * 1000;
  let conn: UpstreamConn | undefined;
  try {
    const socket = await connect(cfg, deadline);
    conn = { socket, reader: new LineReader(socket, deadline), deadline };
    return await steps(conn);
  } catch (err) {
    conn?.socket.destroy();
    if (err instanceof Unavailable) return { kind: 'unavailable', reason: err.reason, detail: err.detail };
    return { kind: 'unavailable', reason: 'server_error', detail: (err as Error).message };
  }
}
