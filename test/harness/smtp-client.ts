// A raw SMTP client for exact-byte tests: writes what it is told and reads whole replies.
import net from 'node:net';
import tls from 'node:tls';

export class RawSmtp {
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  /** Everything the server sent, in order. */
  transcript = '';

  private constructor(public sock: net.Socket) {
    sock.setNoDelay(true);
    this.listen(sock);
  }

  private listen(sock: net.Socket): void {
    sock.on('data', (d: Buffer) => {
      const s = d.toString('latin1');
      this.buf += s;
      this.transcript += s;
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('error', () => undefined);
  }

  /** Runs the TLS handshake on the connection (after the server's 220 to STARTTLS); later reads and writes use it. */
  starttls(): Promise<void> {
    const raw = this.sock;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    return new Promise((resolve, reject) => {
      const t = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve());
      t.once('error', reject);
      this.sock = t;
      this.listen(t);
    });
  }

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

  write(data: string | Buffer): void {
    this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Reads one complete reply (all its lines); resolves '' if the connection closed first. */
  async reply(timeoutMs = 5000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0];
      }
      if (this.closed) return '';
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; buffer: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
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

  /** Resolves when the server closed the connection. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.sock.destroy();
  }
}
