// The socket side of the simulators' small protocol clients (trends/sim-client.ts for SMTP, monitor/sim-imap.ts for
// IMAP): connect from a chosen source address, buffer what the server sends, and read one answer at a time.
import net from 'node:net';

export class LineClient {
  private buf = '';
  private waiter: (() => void) | null = null;
  closed = false;

  protected constructor(protected readonly sock: net.Socket) {
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

  /** A connected socket from `localAddress`, or an error naming both ends. */
  protected static socket(host: string, port: number, localAddress: string | undefined, timeoutMs: number): Promise<net.Socket> {
    const from = localAddress ? ` from ${localAddress}` : '';
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, localAddress });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${host}:${port}${from} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(t);
        reject(new Error(`connect to ${host}:${port}${from}: ${err.message}`));
      });
    });
  }

  /**
   * The first match of `re` in what was received, without its line end, dropping everything up to it; '' once the
   * connection is closed. Throws (and closes) when nothing matches within `timeoutMs`.
   */
  protected async next(re: RegExp, timeoutMs: number, what: string): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m.index + m[0].length);
        return m[0].trimEnd();
      }
      if (this.closed) return '';
      const left = end - Date.now();
      if (left <= 0) {
        this.sock.destroy();
        throw new Error(`no ${what} in time`);
      }
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
}
