// One client connection of the POP3 proxy. In the AUTHORIZATION state Postern is the server: its own greeting
// (no APOP timestamp), CAPA, USER/PASS, AUTH PLAIN and LOGIN, STLS and QUIT, and -ERR for anything else. At login
// it asks the live policies, logs in to the real server with its own AUTH PLAIN (login.ts), and from then on
// splices the two connections, still checking every client command (splice.ts).
import type net from 'node:net';
import type { Config } from '../../config/schema.ts';
import { ClientSession, type HeldInput } from '../client-session.ts';
import type { ProxySession, SessionContext } from '../proxy.ts';
import { decodeResponse, SaslExchange } from '../sasl.ts';
import { isTransaction, multiline, preLoginCapabilities } from './commands.ts';
import { attemptLogin } from './login.ts';
import { parseCommand, Pop3Reader, type LineErrorKind } from './parser.ts';
import { Pop3Splice } from './splice.ts';

export type Pop3Context = SessionContext<Config['monitor']['pop3']>;

/** RFC 5034 §4 lifts the 255-octet limit for the lines of an AUTH exchange; this still bounds them. */
const SASL_MAX_LINE = 4096;

export class Pop3Session extends ClientSession<Config['monitor']['pop3'], Pop3Splice> {
  readonly reader: Pop3Reader;
  /** The name given with USER, waiting for PASS. */
  private user: Buffer | null = null;
  private sasl: SaslExchange | null = null;

  constructor(ctx: Pop3Context, socket: net.Socket, onClosed: (s: ProxySession) => void) {
    super(ctx, socket, onClosed, {
      protocol: 'pop3',
      refused: '-ERR [SYS/PERM] Service not available from your address.\r\n',
      inactive: '-ERR Disconnected for inactivity.\r\n',
      internalError: '-ERR Internal error.\r\n',
      bad: (_command, text) => `-ERR ${text}\r\n`,
      tooManyBad: '-ERR Too many bad commands.\r\n',
      refField: 'command',
    });
    this.reader = new Pop3Reader(ctx.cfg.max_line, {
      line: (b) => {
        if (this.state === 'proxy') return this.splice?.line(b);
        if (this.sasl) return this.saslLine(b);
        this.command(b);
      },
      error: (kind, text) => this.lineError(kind, text),
    });
  }

  protected input(): HeldInput {
    return this.reader;
  }

  /** While a login is pending the reader holds a few commands' worth before the session stops reading. */
  protected holdLimit(): number {
    return 4 * this.ctx.cfg.max_line;
  }

  protected greeting(): string {
    return '+OK POP3 server ready.\r\n';
  }

  private lineError(kind: LineErrorKind, text: string): void {
    if (this.state === 'proxy') return this.splice?.lineError(kind, text);
    if (this.sasl) this.endSasl();
    this.badCommand(null, text, kind);
  }

  private command(line: Buffer): void {
    this.facts.commands++;
    const cmd = parseCommand(line);
    const { name, args, rest } = cmd;
    switch (name) {
      case 'CAPA':
        return this.write(multiline('Capability list follows', preLoginCapabilities(this.facts.tls !== null)));
      case 'QUIT':
        this.write('+OK Logging out.\r\n');
        return this.end('quit');
      case 'USER':
        if (!rest.length) return this.badCommand(name, 'USER needs a user name.', 'syntax');
        this.user = Buffer.from(rest);
        return this.write('+OK\r\n');
      case 'PASS': {
        const user = this.user;
        if (!user) return this.badCommand(name, 'No user name given.', 'syntax');
        if (!rest.length) return this.badCommand(name, 'PASS needs a password.', 'syntax');
        return this.login(user, Buffer.from(rest), 'USER');
      }
      case 'AUTH':
        return this.auth(name, args);
      case 'STLS':
        return this.stls(args.length);
      case 'APOP':
        return this.badCommand(name, 'APOP is not available; use USER or AUTH.', 'refused');
      default:
        if (isTransaction(name)) return this.badCommand(name, 'Log in first.', 'needs_login');
        return this.badCommand(name.slice(0, 40) || null, 'Unknown command.', 'unknown_command');
    }
  }

  private auth(name: string, args: string[]): void {
    if (!args.length) return this.write(multiline('', ['PLAIN', 'LOGIN']));
    if (args.length > 2) return this.badCommand(name, 'AUTH takes a mechanism and an initial response.', 'syntax');
    const mech = args[0].toUpperCase();
    if (mech !== 'PLAIN' && mech !== 'LOGIN') return this.write('-ERR [AUTH] Unsupported authentication mechanism.\r\n');
    this.sasl = new SaslExchange(mech);
    this.reader.maxLine = SASL_MAX_LINE;
    if (args.length === 2) return this.saslLine(Buffer.from(args[1], 'latin1'));
    this.write(`+ ${this.sasl.first()}\r\n`);
  }

  private endSasl(): SaslExchange | null {
    const sasl = this.sasl;
    this.sasl = null;
    this.reader.maxLine = this.ctx.cfg.max_line;
    return sasl;
  }

  /** A client response in an AUTH exchange (or its initial response). */
  private saslLine(b: Buffer): void {
    const sasl = this.sasl;
    if (!sasl) return;
    const text = b.toString('latin1');
    // PO-06: a cancelled exchange leaves the session as it was before AUTH.
    if (text === '*') {
      this.endSasl();
      return this.write('-ERR Authentication aborted by client.\r\n');
    }
    const data = decodeResponse(text);
    if (!data) {
      this.endSasl();
      return this.badCommand('AUTH', 'Invalid base64 data in authentication response.', 'bad_base64');
    }
    const step = sasl.step(data);
    if (step.kind === 'error') {
      this.endSasl();
      return this.badCommand('AUTH', `${step.text}.`, 'bad_sasl');
    }
    if (step.kind === 'continue') return this.write(`+ ${step.challenge}\r\n`);
    this.endSasl();
    this.login(step.user, step.password, `AUTH ${sasl.mechanism}`);
  }

  private stls(nargs: number): void {
    if (nargs) return this.badCommand('STLS', 'STLS takes no arguments.', 'syntax');
    if (this.facts.tls) return this.badCommand('STLS', 'TLS is already active.', 'syntax');
    this.startTls('+OK Begin TLS negotiation now.\r\n', 'STLS', 'STLS');
  }

  /** RFC 2595 §4: what was said before TLS is forgotten. */
  protected forgetClearText(): void {
    this.user = null;
  }

  private login(user: Buffer, password: Buffer, method: string): void {
    // RFC 1939 §7: after a failed PASS the client starts again with USER.
    this.user = null;
    this.pendLogin(
      () => attemptLogin(this, { user, password, method }),
      (result) => {
        this.splice = new Pop3Splice(this, result.socket, result.capabilities);
        this.splice.start(result.text, result.rest);
      },
    );
  }
}
