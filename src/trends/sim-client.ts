// A minimal SMTP client for the simulator: one command, one reply, from a chosen source address. Written here
// because the simulator needs each RCPT's own reply and the moment it came, which nodemailer's client folds into
// one result per message.
import { LineClient } from '../core/line-client.ts';

export class SimClient extends LineClient {
  static async connect(host: string, port: number, localAddress?: string, timeoutMs = 10_000): Promise<SimClient> {
    return new SimClient(await LineClient.socket(host, port, localAddress, timeoutMs));
  }

  /** The next whole reply (every line of a multi-line one); '' when the server closed the connection. */
  reply(timeoutMs = 30_000): Promise<string> {
    return this.next(/^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/, timeoutMs, 'reply from the server');
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
