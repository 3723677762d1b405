// A raw SMTP client for exact-byte tests: writes what it is told and reads whole replies.
import net from 'node:net';

export class RawSmtp {
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  /** Everything the server sent, in order. */
  transcript = '';

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d) => {
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
