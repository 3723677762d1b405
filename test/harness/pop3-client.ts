// A raw POP3 client for exact-byte tests: writes what it is told and reads a status line, or a whole multi-line
// answer through its terminating dot line.
import net from 'node:net';
import tls from 'node:tls';
import { RawClient } from './raw-client.ts';

export class RawPop3 extends RawClient {
  static connect(port: number, opts: { localAddress?: string; tls?: boolean } = {}): Promise<RawPop3> {
    return new Promise((resolve, reject) => {
      const o = { port, host: '127.0.0.1', localAddress: opts.localAddress };
      const sock = opts.tls ? tls.connect({ ...o, rejectUnauthorized: false }, () => resolve(new RawPop3(sock))) : net.connect(o, () => resolve(new RawPop3(sock)));
      sock.once('error', reject);
    });
  }

  /** Connects and reads the greeting. */
  static async open(port: number, opts: { localAddress?: string; tls?: boolean } = {}): Promise<{ c: RawPop3; greeting: string }> {
    const c = await RawPop3.connect(port, opts);
    return { c, greeting: await c.line() };
  }

  /** Reads one line, CRLF included; '' if the connection closed first. */
  line(timeoutMs = 10_000): Promise<string> {
    return this.read(
      (buf) => {
        const i = buf.indexOf('\r\n');
        return i < 0 ? undefined : i + 2;
      },
      timeoutMs,
      () => 'no line',
    );
  }

  /** Reads an answer that is multi-line when it is +OK: the status line and the body through `.\r\n`. */
  multi(timeoutMs = 10_000): Promise<string> {
    return this.read(
      (buf) => {
        const i = buf.indexOf('\r\n');
        if (i < 0) return undefined;
        if (!buf.startsWith('+OK')) return i + 2;
        if (buf.startsWith('.\r\n', i + 2)) return i + 5;
        const end = buf.indexOf('\r\n.\r\n', i);
        return end < 0 ? undefined : end + 5;
      },
      timeoutMs,
      () => 'no end of multi-line answer',
    );
  }

  /** Sends a command and reads its one-line answer. */
  async cmd(line: string, timeoutMs?: number): Promise<string> {
    this.write(`${line}\r\n`);
    return this.line(timeoutMs);
  }

  /** Sends a command and reads its multi-line answer. */
  async cmdMulti(line: string, timeoutMs?: number): Promise<string> {
    this.write(`${line}\r\n`);
    return this.multi(timeoutMs);
  }
}
