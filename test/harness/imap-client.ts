// A raw IMAP client for exact-byte tests: writes what it is told and reads up to a tagged reply or a pattern.
import net from 'node:net';
import tls from 'node:tls';

export class RawImap {
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

  /** Runs the TLS handshake on the connection (after OK to STARTTLS); later reads and writes use it. */
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

  /** Reads up to and including the first match of `re`; resolves '' if the connection closed first. */
  async until(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const upTo = m.index + m[0].length;
        const out = this.buf.slice(0, upTo);
        this.buf = this.buf.slice(upTo);
        return out;
      }
      if (this.closed) return '';
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no match for ${re} within ${timeoutMs} ms; buffer: ${JSON.stringify(this.buf.slice(0, 500))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
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

  /** Waits for the server to close the connection. */
  async closedWithin(ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.sock.destroy();
  }
}
