// One client connection of the submission proxy. Before AUTH Postern is the server: its own greeting, EHLO (its own
// keywords), STARTTLS, AUTH PLAIN and LOGIN, NOOP, RSET, HELP and QUIT, 530 for the mail commands and 500 for
// anything else. At AUTH it asks the live policies, logs in to the real server with its own AUTH PLAIN (login.ts),
// and from then on relays the session, still checking every command line (splice.ts).
import net from 'node:net';
import type { Config } from '../../config/schema.ts';
import { ClientSession, type HeldInput } from '../client-session.ts';
import type { ProxySession, SessionContext } from '../proxy.ts';
import { decodeResponse, SaslExchange } from '../sasl.ts';
import { ehloReply, heloName, NEEDS_AUTH, preLoginKeywords } from './commands.ts';
import { attemptLogin } from './login.ts';
import { parseCommand, SmtpReader, type LineErrorKind } from './parser.ts';
import { SubmissionSplice } from './splice.ts';

/** The section of the config, with the name Postern gives itself in the greeting and EHLO (gateway.hostname). */
export type SubmissionConfig = Config['monitor']['submission'] & { hostname: string };
export type SubmissionContext = SessionContext<SubmissionConfig>;

function loopback(ip: string): boolean {
  return ip === '::1' || (net.isIPv4(ip) && ip.startsWith('127.'));
}

export class SubmissionSession extends ClientSession<SubmissionConfig, SubmissionSplice> {
  readonly reader: SmtpReader;
  /** EHLO was given (in this TLS state): AUTH may follow. */
  private ehlo = false;
  private sasl: SaslExchange | null = null;

  constructor(ctx: SubmissionContext, socket: net.Socket, onClosed: (s: ProxySession) => void) {
    super(ctx, socket, onClosed, {
      protocol: 'submission',
      refused: '554 5.7.1 Service not available from your address\r\n',
      inactive: '421 4.4.2 Disconnected for inactivity\r\n',
      internalError: '421 4.3.0 Internal error, closing connection\r\n',
      // The texts carry their own reply codes: SMTP has one per kind of error.
      bad: (_command, text) => `${text}\r\n`,
      tooManyBad: '421 4.7.0 Too many bad commands, closing connection\r\n',
      refField: 'command',
    });
    this.reader = new SmtpReader(ctx.cfg.max_line, {
      line: (b) => {
        if (this.state === 'proxy') return this.splice?.line(b);
        if (this.sasl) return this.saslLine(b);
        this.command(b);
      },
      error: (kind, text) => this.lineError(kind, text),
      data: (b) => this.splice?.data(b),
      dataEnd: (scan) => this.splice?.dataEnd(scan),
    });
  }

  protected input(): HeldInput {
    return this.reader;
  }

  protected holdLimit(): number {
    return 4 * this.ctx.cfg.max_line;
  }

  protected greeting(): string {
    return `220 ${this.ctx.cfg.hostname} ESMTP ready\r\n`;
  }

  /** Like Dovecot's disable_plaintext_auth: AUTH inside TLS, or from loopback, unless plaintext_auth allows it anywhere. */
  private authAllowed(): boolean {
    return this.facts.tls !== null || this.ctx.cfg.plaintext_auth || loopback(this.facts.ip);
  }

  private lineError(kind: LineErrorKind, text: string): void {
    if (this.state === 'proxy') return this.splice?.lineError(kind, text);
    if (this.sasl) this.endSasl();
    this.badCommand(null, text, kind);
  }

  private command(line: Buffer): void {
    this.facts.commands++;
    const { verb, rest } = parseCommand(line);
    switch (verb) {
      case 'EHLO':
      case 'HELO': {
        const name = heloName(rest);
        if (!name) return this.badCommand(verb, `501 5.5.4 Syntax: ${verb} hostname`, 'syntax');
        this.ehlo = verb === 'EHLO';
        if (verb === 'HELO') return this.write(`250 ${this.ctx.cfg.hostname}\r\n`);
        const keywords = preLoginKeywords({ tls: this.facts.tls !== null, starttls: true, auth: this.authAllowed() });
        return this.write(ehloReply(this.ctx.cfg.hostname, keywords));
      }
      case 'STARTTLS':
        if (rest.trim()) return this.badCommand(verb, '501 5.5.4 STARTTLS takes no arguments', 'syntax');
        if (this.facts.tls) return this.badCommand(verb, '503 5.5.1 TLS already active', 'syntax');
        return this.startTls('220 2.0.0 Ready to start TLS\r\n', 'STARTTLS', 'STARTTLS');
      case 'AUTH':
        return this.auth(rest);
      case 'NOOP':
        return this.write('250 2.0.0 OK\r\n');
      case 'RSET':
        return this.write('250 2.0.0 OK\r\n');
      case 'HELP':
        return this.write('214 2.0.0 https://www.rfc-editor.org/rfc/rfc6409\r\n');
      case 'QUIT':
        this.write('221 2.0.0 Bye\r\n');
        return this.end('quit');
      default:
        if (NEEDS_AUTH.has(verb)) return this.badCommand(verb, '530 5.7.0 Authentication required', 'needs_login');
        return this.badCommand(verb.slice(0, 40) || null, '500 5.5.2 Unknown command', 'unknown_command');
    }
  }

  private auth(rest: string): void {
    if (!this.ehlo) return this.badCommand('AUTH', '503 5.5.1 EHLO first', 'sequence');
    if (!this.authAllowed()) return this.badCommand('AUTH', '538 5.7.11 Encryption required for requested authentication mechanism', 'plaintext_auth');
    const args = rest.split(' ').filter(Boolean);
    if (!args.length || args.length > 2) return this.badCommand('AUTH', '501 5.5.4 Syntax: AUTH mechanism [initial-response]', 'syntax');
    const mech = args[0].toUpperCase();
    if (mech !== 'PLAIN' && mech !== 'LOGIN') return this.badCommand('AUTH', '504 5.5.4 Unrecognized authentication type', 'syntax');
    this.sasl = new SaslExchange(mech);
    if (args.length === 2) return this.saslLine(Buffer.from(args[1], 'latin1'));
    this.write(`334 ${this.sasl.first()}\r\n`);
  }

  private endSasl(): SaslExchange | null {
    const sasl = this.sasl;
    this.sasl = null;
    return sasl;
  }

  /** A client response in an AUTH exchange (or its initial response). */
  private saslLine(b: Buffer): void {
    const sasl = this.sasl;
    if (!sasl) return;
    const text = b.toString('latin1');
    if (text === '*') {
      this.endSasl();
      return this.write('501 5.7.0 Authentication aborted\r\n');
    }
    const data = decodeResponse(text);
    if (!data) {
      this.endSasl();
      return this.badCommand('AUTH', '501 5.5.2 Invalid base64 data in authentication response', 'bad_base64');
    }
    const step = sasl.step(data);
    if (step.kind === 'error') {
      this.endSasl();
      return this.badCommand('AUTH', `501 5.5.2 ${step.text}`, 'bad_sasl');
    }
    if (step.kind === 'continue') return this.write(`334 ${step.challenge}\r\n`);
    this.endSasl();
    this.login(step.user, step.password, `AUTH ${sasl.mechanism}`);
  }

  /** RFC 3207 §4.2: everything said before TLS is forgotten; the client starts again with EHLO. */
  protected forgetClearText(): void {
    this.ehlo = false;
  }

  private login(user: Buffer, password: Buffer, method: string): void {
    this.pendLogin(
      () => attemptLogin(this, { user, password, method }),
      (result) => {
        this.splice = new SubmissionSplice(this, result.socket, result.capabilities);
        this.splice.start(result.text, result.rest);
      },
    );
  }
}
