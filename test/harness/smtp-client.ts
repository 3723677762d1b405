// A raw SMTP client for exact-byte tests: writes what it is told and reads whole replies.
import net from 'node:net';
import { RawClient } from './raw-client.ts';

export class RawSmtp extends RawClient {
  /** What the server sent that no reply() has consumed yet. */
  get unread(): string {
    return this.buf;
  }

  static connect(port: number, opts: { localAddress?: string; host?: string } = {}): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress }, () => resolve(new RawSmtp(sock)));
      sock.once('error', reject);
    });
  }

  /** Reads one complete reply (all its lines); resolves '' if the connection closed first. */
  reply(timeoutMs = 5000): Promise<string> {
    return this.read((buf) => /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(buf)?.[0].length, timeoutMs, () => 'no reply');
  }

  /** Reads `n` replies. */
  async replies(n: number, timeoutMs = 5000): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply(timeoutMs));
    return out;
  }

  /**
   * Writes each part as its own TCP segment: the socket sends without Nagle and waits `gapMs` between writes,
   * long enough for the server to read each part on its own.
   */
  async writeSegments(parts: (string | Buffer)[], gapMs = 15): Promise<void> {
    for (const [i, p] of parts.entries()) {
      if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
      await new Promise<void>((resolve) => this.sock.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p, () => resolve()));
    }
  }

  /** Sends a command line and returns the reply. */
  async cmd(line: string): Promise<string> {
    this.write(line + '\r\n');
    return this.reply();
  }
}
