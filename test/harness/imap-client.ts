// A raw IMAP client for exact-byte tests: writes what it is told and reads up to a tagged reply or a pattern.
import net from 'node:net';
import tls from 'node:tls';
import { RawClient } from './raw-client.ts';

export class RawImap extends RawClient {
  static connect(port: number, opts: { localAddress?: string; tls?: boolean } = {}): Promise<RawImap> {
    return new Promise((resolve, reject) => {
      const o = { port, host: '127.0.0.1', localAddress: opts.localAddress };
      const sock = opts.tls ? tls.connect({ ...o, rejectUnauthorized: false }, () => resolve(new RawImap(sock))) : net.connect(o, () => resolve(new RawImap(sock)));
      sock.once('error', reject);
    });
  }

  /** Connects and reads the greeting. */
  static async open(port: number, opts: { localAddress?: string; tls?: boolean } = {}): Promise<{ c: RawImap; greeting: string }> {
    const c = await RawImap.connect(port, opts);
    return { c, greeting: await c.until(/\r\n/) };
  }

  /** Reads up to and including the first match of `re`; resolves '' if the connection closed first. */
  until(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return this.read(
      (buf) => {
        const m = re.exec(buf);
        return m ? m.index + m[0].length : undefined;
      },
      timeoutMs,
      () => `no match for ${re}`,
    );
  }

  /** Sends a command and reads through its tagged reply. */
  async cmd(tag: string, line: string, timeoutMs?: number): Promise<string> {
    this.write(`${tag} ${line}\r\n`);
    return this.tagged(tag, timeoutMs);
  }

  tagged(tag: string, timeoutMs?: number): Promise<string> {
    const t = tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return this.until(new RegExp(`(?:^|\\n)${t} (?:OK|NO|BAD)[^\\n]*\\n`), timeoutMs);
  }
}
