// A minimal IMAP client for the password-attack simulation: connect from a chosen source address, read the
// greeting, LOGIN, LOGOUT. Written here because the simulation needs each LOGIN's own tagged answer and a refusal
// at the greeting (a BYE) told apart from a failed login, and imapflow folds both into one connection error; it also
// binds no source address per connection.
import { LineClient } from '../core/line-client.ts';

export interface Greeted {
  client: ImapSimClient;
  /** The greeting line: "* OK …", or "* BYE …" when Postern refused the address at connect. */
  greeting: string;
}

export class ImapSimClient extends LineClient {
  private tag = 0;

  /** Connects from `localAddress` and reads the greeting. */
  static async open(host: string, port: number, localAddress: string, timeoutMs = 10_000): Promise<Greeted> {
    const client = new ImapSimClient(await LineClient.socket(host, port, localAddress, timeoutMs));
    return { client, greeting: await client.next(/^\* [^\r\n]*\r?\n/, timeoutMs, 'greeting from the IMAP server') };
  }

  /**
   * LOGIN; resolves to the tagged answer ("a1 OK …", "a1 NO …"), or '' when the server closed the connection
   * first. User and password go as quoted strings, or as non-synchronizing literals (LITERAL-, which the proxy
   * offers) when they hold a byte a quoted string cannot carry.
   */
  async login(user: string, password: string, timeoutMs = 60_000): Promise<string> {
    if (this.closed) return '';
    const tag = `a${++this.tag}`;
    // latin1: astring() gives each byte as one character (a literal's UTF-8 octets included).
    this.sock.write(`${tag} LOGIN ${astring(user)} ${astring(password)}\r\n`, 'latin1');
    return this.next(new RegExp(`^${tag} [^\\r\\n]*\\r?\\n`, 'm'), timeoutMs, 'answer from the IMAP server');
  }

  /** Says LOGOUT if still connected, and closes. */
  close(): void {
    if (!this.closed) this.sock.end(`a${++this.tag} LOGOUT\r\n`);
    setTimeout(() => this.sock.destroy(), 1_000).unref();
  }
}

/** An IMAP astring argument: quoted when printable ASCII, else a non-synchronizing literal. */
function astring(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const b = Buffer.from(s, 'utf8');
  return `{${b.length}+}\r\n${b.toString('latin1')}`;
}
