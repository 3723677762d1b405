// One client connection of the IMAP proxy. Before login Postern is the server: its own greeting and capabilities,
// CAPABILITY, NOOP, ID, STARTTLS, LOGIN, AUTHENTICATE and LOGOUT, and a BAD for anything else. At login it asks
// the live policies, logs in to the real server with its own LOGIN (login.ts), and from then on splices the two
// connections, still framing every client command (splice.ts).
import net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../../config/schema.ts';
import type { Emit } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { LoginGuard } from '../guard.ts';
import { SessionFacts, tlsFacts } from '../session.ts';
import { ImapParser, type ImapCommand, type ParseError, type ParserSink } from './parser.ts';
import { decodeResponse, SaslExchange } from '../sasl.ts';
import { clientId, preLoginCapabilities, stringArg } from './wire.ts';
import { attemptLogin } from './login.ts';
import { Splice } from './splice.ts';

export interface ImapContext {
  cfg: Config['monitor']['imap'];
  secureContext: tls.SecureContext;
  guard: LoginGuard;
  emit: Emit;
  log: Logger;
}

/** Commands of the authenticated and selected states (RFC 9051 §6.3-6.4 and common extensions): BAD before login. */
const AFTER_LOGIN = new Set(
  'SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB NAMESPACE STATUS APPEND IDLE ENABLE CHECK CLOSE UNSELECT EXPUNGE SEARCH FETCH STORE COPY MOVE UID GETQUOTA GETQUOTAROOT SETQUOTA GETACL SETACL MYRIGHTS LISTRIGHTS GETMETADATA SETMETADATA SORT THREAD NOTIFY COMPRESS ESEARCH'.split(' '),
);

export class ImapSession {
  readonly facts: SessionFacts;
  readonly parser: ImapParser;
  sock: net.Socket;
  state: 'preauth' | 'login' | 'proxy' | 'closed' = 'preauth';
  private bad = 0;
  private idFields: [string, string][] = [];
  private sasl: { tag: string; exchange: SaslExchange } | null = null;
  private loginTimer: NodeJS.Timeout | null = null;
  private splice: Splice | null = null;
  private readonly onData = (d: Buffer) => {
    this.facts.bytesIn += d.length;
    try {
      this.parser.feed(d);
    } catch (err) {
      return this.fail(err as Error);
    }
    // While a login is pending the parser holds what arrives; past one command's worth, stop reading instead.
    if (this.state === 'login' && this.parser.buffered > this.ctx.cfg.max_line) this.sock.pause();
  };

  constructor(
    readonly ctx: ImapContext,
    socket: net.Socket,
    private readonly onClosed: (s: ImapSession) => void,
  ) {
    this.sock = socket;
    this.facts = new SessionFacts(socket);
    const c = ctx.cfg;
    this.parser = new ImapParser(
      { maxLine: c.max_line, maxLiteral: c.max_literal, maxNonSyncLiteral: c.max_nonsync_literal, maxDepthPreAuth: 1 },
      this.sink(),
    );
  }

  get log(): Logger {
    return this.ctx.log;
  }

  /** Greets, or refuses the connection when a live policy blocks the client's address. */
  start(): void {
    const { facts, ctx } = this;
    this.sock.setNoDelay(true);
    this.sock.on('error', () => this.close('client_error'));
    this.sock.on('close', () => this.close('client_closed'));
    const block = ctx.guard.atConnect(facts.ip);
    if (block) {
      ctx.emit('imap.connect.refused', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, policy: block.id, reason: block.reason } });
      this.write('* BYE [UNAVAILABLE] Service not available from your address.\r\n');
      return this.end('blocked');
    }
    ctx.emit('imap.connect', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, tls: facts.tls, port: facts.port } });
    this.sock.on('data', this.onData);
    this.loginTimer = setTimeout(() => {
      this.write('* BYE Disconnected for inactivity.\r\n');
      this.end('login_timeout');
    }, ctx.cfg.login_timeout_s * 1000);
    this.loginTimer.unref();
    this.write(`* OK [CAPABILITY ${this.capabilities()}] IMAP server ready.\r\n`);
  }

  private capabilities(): string {
    return preLoginCapabilities(this.facts.tls !== null, this.ctx.cfg.max_nonsync_literal);
  }

  write(s: string | Buffer): void {
    if (this.state === 'closed') return;
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    this.facts.bytesOut += b.length;
    this.sock.write(b);
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

  /** Counts a protocol error and records it as an event. */
  protocolError(kind: string, text: string, tag: string | null): void {
    this.facts.errors++;
    this.ctx.emit('imap.protocol_error', {
      ip: this.facts.ip,
      conn_id: this.facts.id,
      data: { session: this.facts.id, kind, detail: text, tag, logged_in: this.state === 'proxy', user: this.facts.user },
    });
  }

  /** Answers BAD before login; max_bad_commands of them end the session (IM-08). */
  private badCommand(tag: string | null, text: string, kind: string): void {
    this.write(`${tag ?? '*'} BAD ${text}\r\n`);
    this.protocolError(kind, text, tag);
    if (++this.bad >= this.ctx.cfg.max_bad_commands) {
      this.protocolError('too_many_bad_commands', `${this.bad} invalid commands before login`, null);
      this.write('* BYE Too many invalid IMAP commands.\r\n');
      this.end('too_many_bad_commands');
    }
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
    const raw = this.sock;
    // Nothing the client sent after STARTTLS in the clear may be read once TLS is up (CVE-2011-0411, IM-09): the
    // parser holds it from here, and it is dropped when the reply is out (by then the rest of the segment that
    // carried STARTTLS is held too).
    this.parser.pause();
    raw.write(`${tag} OK Begin TLS negotiation now.\r\n`, () => this.upgrade(raw, tag));
  }

  private upgrade(raw: net.Socket, tag: string): void {
    if (this.state === 'closed') return;
    raw.removeListener('data', this.onData);
    const dropped = this.parser.discardBuffered();
    if (dropped) this.protocolError('starttls_injection', `${dropped} octets sent after STARTTLS before the handshake were dropped`, tag);
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    const t = new tls.TLSSocket(raw, { isServer: true, secureContext: this.ctx.secureContext });
    this.sock = t;
    t.on('error', () => this.close('tls_error'));
    t.on('close', () => this.close('client_closed'));
    t.once('secure', () => {
      this.facts.tls = tlsFacts(t);
      t.on('data', this.onData);
      try {
        this.parser.resume();
      } catch (err) {
        this.fail(err as Error);
      }
    });
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
    this.state = 'login';
    this.parser.pause();
    attemptLogin(this, { tag, user, password, method, id: this.idFields }).then(
      (result) => {
        if (this.state === 'closed') return result?.socket.destroy();
        this.sock.resume();
        if (!result) {
          this.state = 'preauth';
          return this.parser.resume();
        }
        if (this.loginTimer) clearTimeout(this.loginTimer);
        this.state = 'proxy';
        this.splice = new Splice(this, result.socket, result.capabilities);
        this.splice.start(tag, result.text, result.rest);
      },
    ).catch((err: Error) => this.fail(err));
  }

  /** A bug met in this session ends this session only, never the process. */
  fail(err: Error): void {
    this.log.error({ err: err.message, stack: err.stack, session: this.facts.id }, 'imap session failed');
    this.protocolError('internal_error', err.message, null);
    if (this.state === 'proxy') this.splice?.inject('* BYE Internal error.\r\n');
    else this.write('* BYE Internal error.\r\n');
    this.end('internal_error');
  }

  /** Ends the session after what was written reaches the client. */
  end(reason: string): void {
    if (this.state === 'closed') return;
    const s = this.sock;
    this.close(reason);
    s.end();
    setTimeout(() => s.destroy(), 2_000).unref();
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    // Commands behind the one that ended the session, in the same segment, are never run.
    this.parser.pause();
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.splice?.stop();
    this.sock.removeListener('data', this.onData);
    this.ctx.emit('imap.close', { ip: this.facts.ip, conn_id: this.facts.id, data: this.facts.summary(reason) });
    this.onClosed(this);
  }
}
