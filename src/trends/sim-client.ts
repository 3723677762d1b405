// A minimal SMTP client for the simulator: one command, one reply, from a chosen source address. Written here
// because the simulator needs each RCPT's own reply and the moment it came, which nodemailer's client folds into
// one result per message.
import net from 'node:net';

export class SimClient {
  private buf = '';
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(private readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.waiter?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    sock.on('error', () => undefined);
  }

  static connect(host: string, port: number, localAddress?: string, timeoutMs = 10_000): Promise<SimClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port, localAddress });
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(t);
        resolve(new SimClient(sock));
      });
      sock.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
  }

  /** The next whole reply (every line of a multi-line one); '' when the server closed the connection. */
  async reply(timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (this.closed) return '';
      const left = end - Date.now();
      if (left <= 0) throw new Error('no reply from the server');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          this.waiter = null;
          r();
        };
      });
    }
  }

  async cmd(line: string): Promise<string> {
    if (this.closed) return '';
    this.sock.write(line + '\r\n');
    return this.reply();
  }

  /** Sends a message body after a 354; returns the final reply. */
  async data(body: string): Promise<string> {
    const r = await this.cmd('DATA');
    if (!r.startsWith('354')) return r;
    this.sock.write(body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..') + '\r\n.\r\n');
    return this.reply();
  }

  quit(): void {
    if (!this.closed) this.sock.end('QUIT\r\n');
    setTimeout(() => this.sock.destroy(), 1000).unref();
  }
}

export const code = (reply: string): string => {
  const m = /^(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})?/.exec(reply);
  return m ? (m[2] ? `${m[1]} ${m[2]}` : m[1]) : 'closed';
};
