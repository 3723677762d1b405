// The socket side of the raw protocol clients (smtp-client.ts, imap-client.ts): buffers what the server sends, wakes
// readers, switches to TLS in place, and writes exact bytes.
import type net from 'node:net';
import tls from 'node:tls';

export class RawClient {
  protected buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  /** Everything the server sent, in order. */
  transcript = '';

  protected constructor(public sock: net.Socket) {
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

  /** Runs the TLS handshake on the connection (after the server agreed to STARTTLS); later reads and writes use it. */
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

  write(data: string | Buffer): void {
    this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /**
   * Takes what `take` finds at the start of the buffer (the length it consumes, or undefined for not yet), waiting
   * for more data until `timeoutMs`; resolves '' if the connection closed first.
   */
  protected async read(take: (buf: string) => number | undefined, timeoutMs: number, what: () => string): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const n = take(this.buf);
      if (n !== undefined) {
        const out = this.buf.slice(0, n);
        this.buf = this.buf.slice(n);
        return out;
      }
      if (this.closed) return '';
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${what()} within ${timeoutMs} ms; buffer: ${JSON.stringify(this.buf.slice(0, 500))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Resolves true when the server closed the connection within `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.sock.destroy();
  }
}
