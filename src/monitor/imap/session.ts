// One client connection of the IMAP proxy. Before login Postern is the server: its own greeting and capabilities,
// CAPABILITY, NOOP, ID, STARTTLS, LOGIN, AUTHENTICATE and LOGOUT, and a BAD for anything else. At login it asks
// the live policies, logs in to the real server with its own LOGIN (login.ts), and from then on splices the two
// connections, still framing every client command (splice.ts).
import type net from 'node:net';
import type { Config } from '../../config/schema.ts';
import { ClientSession, type HeldInput } from '../client-session.ts';
import type { ProxySession, SessionContext } from '../proxy.ts';
import { ImapParser, type ImapCommand, type ParseError, type ParserSink } from './parser.ts';
import { decodeResponse, SaslExchange } from '../sasl.ts';
import { clientId, preLoginCapabilities, stringArg } from './wire.ts';
import { attemptLogin } from './login.ts';
import { Splice } from './splice.ts';

export type ImapContext = SessionContext<Config['monitor']['imap']>;

/** Commands of the authenticated and selected states (RFC 9051 §6.3-6.4 and common extensions): BAD before login. */
const AFTER_LOGIN = new Set(
  'SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB NAMESPACE STATUS APPEND IDLE ENABLE CHECK CLOSE UNSELECT EXPUNGE SEARCH FETCH STORE COPY MOVE UID GETQUOTA GETQUOTAROOT SETQUOTA GETACL SETACL MYRIGHTS LISTRIGHTS GETMETADATA SETMETADATA SORT THREAD NOTIFY COMPRESS ESEARCH'.split(' '),
);

export class ImapSession extends ClientSession<Config['monitor']['imap'], Splice> {
  readonly parser: ImapParser;
  private idFields: [string, string][] = [];
  private sasl: { tag: string; exchange: SaslExchange } | null = null;

  constructor(ctx: ImapContext, socket: net.Socket, onClosed: (s: ProxySession) => void) {
    super(ctx, socket, onClosed, {
      protocol: 'imap',
      refused: '* BYE [UNAVAILABLE] Service not available from your address.\r\n',
      inactive: '* BYE Disconnected for inactivity.\r\n',
      internalError: '* BYE Internal error.\r\n',
      bad: (tag, text) => `${tag ?? '*'} BAD ${text}\r\n`,
      tooManyBad: '* BYE Too many invalid IMAP commands.\r\n',
      refField: 'tag',
    });
    const c = ctx.cfg;
    this.parser = new ImapParser(
      { maxLine: c.max_line, maxLiteral: c.max_literal, maxNonSyncLiteral: c.max_nonsync_literal, maxDepthPreAuth: 1 },
      this.sink(),
    );
  }

  protected input(): HeldInput {
    return this.parser;
  }

  /** While a login is pending the parser holds one command's worth before the session stops reading. */
  protected holdLimit(): number {
    return this.ctx.cfg.max_line;
  }

  protected greeting(): string {
    return `* OK [CAPABILITY ${this.capabilities()}] IMAP server ready.\r\n`;
  }

  private capabilities(): string {
    return preLoginCapabilities(this.facts.tls !== null, this.ctx.cfg.max_nonsync_literal);
  }

  private sink(): ParserSink {
    return {
      command: (cmd) => (this.state === 'proxy' ? this.splice?.command(cmd) : this.preauth(cmd)),
      error: (e) => this.parseError(e),
      continueLiteral: () => (this.state === 'proxy' ? this.splice?.inject('+ Ready for literal data\r\n') : this.write('+ Ready for literal data\r\n')),
      line: (b) => (this.state === 'proxy' ? this.splice?.done() : this.saslLine(b)),
      head: (tag, name) => this.splice?.refusal(name),
      segment: (b) => this.splice?.toServer(b),
      literal: (b) => this.splice?.toServer(b),
    };
  }

  private parseError(e: ParseError): void {
    const text = `${e.code ? `[${e.code}] ` : ''}${e.text}`;
    if (this.state === 'proxy') return this.splice?.parseError(e, text);
    if (e.fatal) {
      this.protocolError(e.kind, text, e.tag);
      this.write(`* BYE ${text}\r\n`);
      return this.end(e.kind);
    }
    if (this.sasl) {
      const { tag } = this.sasl;
      this.sasl = null;
      return this.badCommand(tag, 'Authentication response too long.', e.kind);
    }
    this.badCommand(e.tag, text, e.kind);
  }

  private preauth(cmd: ImapCommand): void {
    this.facts.commands++;
    const { tag, name, args } = cmd;
    switch (name) {
      case 'CAPABILITY':
        return this.write(`* CAPABILITY ${this.capabilities()}\r\n${tag} OK Pre-login capabilities listed, post-login capabilities have more.\r\n`);
      case 'NOOP':
        return this.write(`${tag} OK NOOP completed.\r\n`);
      case 'LOGOUT':
        this.write(`* BYE Logging out\r\n${tag} OK Logout completed.\r\n`);
        return this.end('logout');
      case 'ID':
        return this.id(tag, args);
      case 'STARTTLS':
        return this.starttls(tag, args.length);
      case 'LOGIN': {
        const user = stringArg(args[0]);
        const pass = stringArg(args[1]);
        if (args.length !== 2 || !user || !pass) return this.badCommand(tag, 'LOGIN needs a user name and a password.', 'syntax');
        return this.login(tag, user, pass, 'LOGIN');
      }
      case 'AUTHENTICATE':
        return this.authenticate(tag, cmd);
      default:
        if (AFTER_LOGIN.has(name.split(' ')[0])) return this.badCommand(tag, 'Log in first.', 'needs_login');
        return this.badCommand(tag, 'Unknown command.', 'unknown_command');
    }
  }

  private id(tag: string, args: ImapCommand['args']): void {
    const r = clientId(args);
    if ('error' in r) return this.badCommand(tag, `${r.error}.`, 'syntax');
    this.idFields = r.fields;
    const known = r.fields.filter(([k]) => /^(name|version|vendor|os)$/i.test(k));
    this.facts.client = known.length ? Object.fromEntries(known.map(([k, v]) => [k.toLowerCase(), v.slice(0, 100)])) : null;
    this.write(`* ID ("name" "Postern")\r\n${tag} OK ID completed.\r\n`);
  }

  private starttls(tag: string, nargs: number): void {
    if (nargs) return this.badCommand(tag, 'STARTTLS takes no arguments.', 'syntax');
    if (this.facts.tls) return this.badCommand(tag, 'TLS is already active.', 'syntax');
    this.startTls(`${tag} OK Begin TLS negotiation now.\r\n`, 'STARTTLS', tag);
  }

  private authenticate(tag: string, cmd: ImapCommand): void {
    const mech = cmd.args[0]?.type === 'atom' ? cmd.args[0].value.toUpperCase() : '';
    if (cmd.args.length < 1 || cmd.args.length > 2 || !mech) return this.badCommand(tag, 'AUTHENTICATE needs a mechanism name.', 'syntax');
    if (mech !== 'PLAIN' && mech !== 'LOGIN') return this.write(`${tag} NO Unsupported authentication mechanism.\r\n`);
    const exchange = new SaslExchange(mech);
    this.sasl = { tag, exchange };
    if (cmd.args.length === 2) {
      const ir = stringArg(cmd.args[1]);
      return this.saslLine(ir ?? Buffer.alloc(0));
    }
    this.write(`+ ${exchange.first()}\r\n`);
    this.parser.expectLine();
  }

  /** A client response in an AUTHENTICATE exchange (or its initial response). */
  private saslLine(b: Buffer): void {
    const sasl = this.sasl;
    if (!sasl) return;
    const text = b.toString('latin1');
    if (text === '*') {
      this.sasl = null;
      return this.write(`${sasl.tag} BAD Authentication aborted by client.\r\n`);
    }
    const data = decodeResponse(text);
    if (!data) {
      this.sasl = null;
      return this.badCommand(sasl.tag, 'Invalid base64 data in authentication response.', 'bad_base64');
    }
    const step = sasl.exchange.step(data);
    if (step.kind === 'error') {
      this.sasl = null;
      return this.badCommand(sasl.tag, `${step.text}.`, 'bad_sasl');
    }
    if (step.kind === 'continue') {
      this.write(`+ ${step.challenge}\r\n`);
      return this.parser.expectLine();
    }
    this.sasl = null;
    this.login(sasl.tag, step.user, step.password, `AUTHENTICATE ${sasl.exchange.mechanism}`);
  }

  private login(tag: string, user: Buffer, password: Buffer, method: string): void {
    this.pendLogin(
      () => attemptLogin(this, { tag, user, password, method, id: this.idFields }),
      (result) => {
        this.splice = new Splice(this, result.socket, result.capabilities);
        this.splice.start(tag, result.text, result.rest);
      },
    );
  }
}
