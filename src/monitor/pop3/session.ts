// One client connection of the POP3 proxy. In the AUTHORIZATION state Postern is the server: its own greeting
// (no APOP timestamp), CAPA, USER/PASS, AUTH PLAIN and LOGIN, STLS and QUIT, and -ERR for anything else. At login
// it asks the live policies, logs in to the real server with its own AUTH PLAIN (login.ts), and from then on
// splices the two connections, still checking every client command (splice.ts).
import type net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../../config/schema.ts';
import type { Emit } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { LoginGuard } from '../guard.ts';
import { decodeResponse, SaslExchange } from '../sasl.ts';
import { SessionFacts, tlsFacts } from '../session.ts';
import { isTransaction, multiline, preLoginCapabilities } from './commands.ts';
import { attemptLogin } from './login.ts';
import { parseCommand, Pop3Reader, type LineErrorKind } from './parser.ts';
import { Pop3Splice } from './splice.ts';

export interface Pop3Context {
  cfg: Config['monitor']['pop3'];
  secureContext: tls.SecureContext;
  guard: LoginGuard;
  emit: Emit;
  log: Logger;
}

/** RFC 5034 §4 lifts the 255-octet limit for the lines of an AUTH exchange; this still bounds them. */
const SASL_MAX_LINE = 4096;

export class Pop3Session {
  readonly facts: SessionFacts;
  readonly reader: Pop3Reader;
  sock: net.Socket;
  state: 'authorization' | 'login' | 'proxy' | 'closed' = 'authorization';
  private bad = 0;
  /** The name given with USER, waiting for PASS. */
  private user: Buffer | null = null;
  private sasl: SaslExchange | null = null;
  private loginTimer: NodeJS.Timeout | null = null;
  private splice: Pop3Splice | null = null;
  private readonly onData = (d: Buffer) => {
    this.facts.bytesIn += d.length;
    try {
      this.reader.feed(d);
    } catch (err) {
      return this.fail(err as Error);
    }
    // While a login is pending the reader holds what arrives; past a few commands' worth, stop reading instead.
    if (this.state === 'login' && this.reader.buffered > 4 * this.ctx.cfg.max_line) this.sock.pause();
  };

  constructor(
    readonly ctx: Pop3Context,
    socket: net.Socket,
    private readonly onClosed: (s: Pop3Session) => void,
  ) {
    this.sock = socket;
    this.facts = new SessionFacts(socket);
    this.reader = new Pop3Reader(ctx.cfg.max_line, {
      line: (b) => {
        if (this.state === 'proxy') return this.splice?.line(b);
        if (this.sasl) return this.saslLine(b);
        this.command(b);
      },
      error: (kind, text) => this.lineError(kind, text),
    });
  }

  /** Greets, or refuses the connection when a live policy blocks the client's address. */
  start(): void {
    const { facts, ctx } = this;
    this.sock.setNoDelay(true);
    this.sock.on('error', () => this.close('client_error'));
    this.sock.on('close', () => this.close('client_closed'));
    const block = ctx.guard.atConnect(facts.ip);
    if (block) {
      ctx.emit('pop3.connect.refused', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, policy: block.id, reason: block.reason } });
      this.write('-ERR [SYS/PERM] Service not available from your address.\r\n');
      return this.end('blocked');
    }
    ctx.emit('pop3.connect', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, tls: facts.tls, port: facts.port } });
    this.sock.on('data', this.onData);
    this.loginTimer = setTimeout(() => {
      this.write('-ERR Disconnected for inactivity.\r\n');
      this.end('login_timeout');
    }, ctx.cfg.login_timeout_s * 1000);
    this.loginTimer.unref();
    this.write('+OK POP3 server ready.\r\n');
  }

  write(s: string | Buffer): void {
    if (this.state === 'closed') return;
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    this.facts.bytesOut += b.length;
    this.sock.write(b);
  }

  /** Counts a protocol error and records it as an event. */
  protocolError(kind: string, text: string, command: string | null): void {
    this.facts.errors++;
    this.ctx.emit('pop3.protocol_error', {
      ip: this.facts.ip,
      conn_id: this.facts.id,
      data: { session: this.facts.id, kind, detail: text, command, logged_in: this.state === 'proxy', user: this.facts.user },
    });
  }

  /** Answers -ERR before login; max_bad_commands of them end the session (PO-07). */
  private badCommand(command: string | null, text: string, kind: string): void {
    this.write(`-ERR ${text}\r\n`);
    this.protocolError(kind, text, command);
    if (++this.bad >= this.ctx.cfg.max_bad_commands) {
      this.protocolError('too_many_bad_commands', `${this.bad} invalid commands before login`, null);
      this.write('-ERR Too many bad commands.\r\n');
      this.end('too_many_bad_commands');
    }
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
    const raw = this.sock;
    // Nothing the client sent after STLS in the clear may be read once TLS is up (CVE-2011-0411, PO-02): the
    // reader holds it from here, and it is dropped when the reply is out.
    this.reader.pause();
    raw.write('+OK Begin TLS negotiation now.\r\n', () => this.upgrade(raw));
  }

  private upgrade(raw: net.Socket): void {
    if (this.state === 'closed') return;
    raw.removeListener('data', this.onData);
    const dropped = this.reader.discardBuffered();
    if (dropped) this.protocolError('starttls_injection', `${dropped} octets sent after STLS before the handshake were dropped`, 'STLS');
    // RFC 2595 §4: what was said before TLS is forgotten.
    this.user = null;
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
        this.reader.resume();
      } catch (err) {
        this.fail(err as Error);
      }
    });
  }

  private login(user: Buffer, password: Buffer, method: string): void {
    // RFC 1939 §7: after a failed PASS the client starts again with USER.
    this.user = null;
    this.state = 'login';
    this.reader.pause();
    attemptLogin(this, { user, password, method })
      .then((result) => {
        if (this.state === 'closed') return result?.socket.destroy();
        this.sock.resume();
        if (!result) {
          this.state = 'authorization';
          return this.reader.resume();
        }
        if (this.loginTimer) clearTimeout(this.loginTimer);
        this.state = 'proxy';
        this.splice = new Pop3Splice(this, result.socket, result.capabilities);
        this.splice.start(result.text, result.rest);
      })
      .catch((err: Error) => this.fail(err));
  }

  /** A bug met in this session ends this session only, never the process. */
  fail(err: Error): void {
    this.ctx.log.error({ err: err.message, stack: err.stack, session: this.facts.id }, 'pop3 session failed');
    this.protocolError('internal_error', err.message, null);
    if (this.state === 'proxy') this.splice?.inject('-ERR Internal error.\r\n');
    else this.write('-ERR Internal error.\r\n');
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
    this.reader.pause();
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.splice?.stop();
    this.sock.removeListener('data', this.onData);
    this.ctx.emit('pop3.close', { ip: this.facts.ip, conn_id: this.facts.id, data: this.facts.summary(reason) });
    this.onClosed(this);
  }
}
