// smtp-server's connection with Postern's protocol enforcement: greeting pause as a policy, early talkers,
// command-line limits, bare CR/NUL in commands, header-shaped and non-SMTP commands, BDAT, RFC 2920
// synchronization, error and junk-command limits, per-request and session deadlines.
import { domainToASCII } from 'node:url';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPServer } from 'smtp-server';
import { PosternStream } from './data-reader.ts';
import { REPLY, type SmtpReply } from '../core/reply.ts';

export type TimeoutKind = 'idle' | 'request' | 'data_rate' | 'tls_handshake' | 'session';

/** What the connection reports to the gateway. */
export interface ConnectionHooks {
  /** Decides the greeting pause for a new connection, or refuses it. */
  beforeGreeting(conn: PosternConnection): Promise<{ pauseMs: number } | { refuse: SmtpReply }>;
  protocolError(conn: PosternConnection, kind: string, detail: string): void;
  earlyTalker(conn: PosternConnection, bytes: string): void;
  helo(conn: PosternConnection, name: string): void;
  /** MAIL refused before the gateway's onMailFrom ran (a declared SIZE over the limit). */
  mailRefused(conn: PosternConnection, from: string, reason: string, reply: SmtpReply): void;
  /** The session is being closed because the client took too long. */
  timeout(conn: PosternConnection, kind: TimeoutKind, detail: Record<string, unknown>): void;
  closed(conn: PosternConnection): void;
  maxCommandLine: number;
  maxErrors: number;
  sessionTimeoutMs: number;
  /** What the domainless recipient `postmaster` (RFC 5321 4.1.1.3) stands for here. */
  postmaster: string;
  /** Time a client has for one request (a command line, or the message after 354) before the data-rate allowance. */
  requestTimeoutMs: number;
}

/** An address as smtp-server parsed it; `unicode` is set when Postern kept the A-label the client sent. */
export interface ParsedAddress {
  address: string;
  args: Record<string, string | true> | false;
  unicode?: string;
}

interface ParamError {
  code: number;
  message: string;
  enhancedCode: string | null;
}

interface Internals {
  _ready: boolean;
  _closing: boolean;
  _closed: boolean;
  _upgrading: boolean;
  _handlerPending: boolean;
  _parser: PosternStream | false;
  _dataStream: unknown;
  _server: SMTPServer & { options: Record<string, unknown>; connections: Set<unknown> };
  _setListeners(cb: () => void): void;
  connectionReady(): void;
  _onCommand(command: Buffer, callback?: () => void): void;
  _onTimeout(): void;
  _createParser(): PosternStream;
  _parseAddressCommand(name: string, command: Buffer | string): ParsedAddress | false;
  _validateMailParams(parsed: ParsedAddress): ParamError | null;
  handler_EHLO(command: Buffer, callback: () => void): void;
  handler_HELO(command: Buffer, callback: () => void): void;
  send(code: number, data?: string | string[], context?: string | false): void;
  close(): void;
  _onClose(): void;
  remoteAddress: string;
  hostNameAppearsAs: string | false;
  id: string;
}

const proto = SMTPConnection.prototype as unknown as Internals;
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
// RFC 2920 3.1: these may only be the last command of a pipelined group (Postfix marks the same ones "last";
// QUIT is left out because nothing after it is read anyway).
const SYNC_POINTS = new Set(['EHLO', 'HELO', 'DATA', 'STARTTLS', 'AUTH', 'NOOP', 'VRFY', 'EXPN']);
// The commands Postern answers. smtp-server also carries sendmail's joke commands (WIZ, SHELL, KILL) and
// XCLIENT/XFORWARD, which need a trust configuration Postern does not have: to a client they do not exist.
const COMMANDS = new Set(['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'HELP', 'STARTTLS']);
// Postfix smtpd_forbidden_commands (CONNECT GET POST) and the other HTTP methods: a proxy or a browser being
// abused to talk to us. Nothing it sends is SMTP, so the session ends at once.
const FORBIDDEN = new Set(['CONNECT', 'GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH']);
// Postfix smtpd_junk_command_limit (100): commands that move no mail forward. Past the limit each one counts as
// an error, so a client cannot hold a session open with them; the count starts again after an accepted message.
const JUNK = new Set(['EHLO', 'HELO', 'RSET', 'NOOP', 'VRFY', 'HELP']);
const JUNK_LIMIT = 100;
// Postfix smtpd_min_data_rate (500 B/s, used with smtpd_per_request_deadline): every octet received extends the
// request deadline by 2 ms. A client that drips its message (or a command) a byte at a time resets the idle
// timeout forever; the deadline still ends it after about idle_timeout_s. Any client faster than 500 B/s is
// never affected.
const MIN_DATA_RATE = 500;

export class PosternConnection extends (SMTPConnection as unknown as new (server: SMTPServer, socket: unknown, opts: unknown) => object) {
  hooks!: ConnectionHooks;
  pauseMs = 0;
  errors = 0;
  junk = 0;
  startedAt = Date.now();
  bareLfNoted = false;
  private lastCommand = '';
  /** Octets that followed the previous command line in its segment: more than 0 means this one was pipelined. */
  private lastFollowing = 0;
  private pipelined = false;
  /** A MAIL or RCPT of the current transaction was refused. */
  private txnRefused = false;
  private deadline: NodeJS.Timeout | null = null;
  /** When the server started waiting for the current request (0: the server has the turn), and octets since. */
  private reqStart = 0;
  private reqBytes = 0;
  private reqTimer: NodeJS.Timeout | null = null;

  private get self(): Internals {
    return this as unknown as Internals;
  }

  get ip(): string {
    return this.self.remoteAddress;
  }

  get cid(): string {
    return this.self.id;
  }

  /** Replaces smtp-server's fixed 100 ms early-talker pause with the pause the gateway's policy chose. */
  init(): void {
    const self = this.self;
    self._setListeners(() => {
      const srv = self._server;
      const max = srv.options.maxClients as number | undefined;
      if (max && srv.connections.size > max) {
        this.reply(REPLY.tooManyConnections);
        return;
      }
      this.hooks.beforeGreeting(this).then(
        (d) => {
          if (self._closing || self._closed) return;
          if ('refuse' in d) return this.reply(d.refuse, true);
          this.pauseMs = d.pauseMs;
          if (d.pauseMs > 0) setTimeout(() => this.ready(), d.pauseMs).unref();
          else this.ready();
        },
        () => this.reply(REPLY.localProblem, true),
      );
    });
  }

  private ready(): void {
    const self = this.self;
    if (self._closing || self._closed) return;
    self.connectionReady();
    this.deadline = setTimeout(() => {
      if (self._closed || self._closing) return;
      this.hooks.timeout(this, 'session', { duration_ms: Date.now() - this.startedAt });
      this.reply(REPLY.sessionTimeout, true);
    }, this.hooks.sessionTimeoutMs);
    this.deadline.unref();
  }

  /** Sends a catalogue reply; 421 and `close` end the session. */
  reply(r: SmtpReply, close = false): void {
    this.self.send(r.code, `${r.enhanced} ${r.text}`);
    if (close && r.code !== 421) this.self.close();
  }

  /**
   * Our replies carry their own enhanced code; smtp-server's table must not add a second (or a wrong) one.
   * smtp-server's own refusals (bad sequence, bad syntax) are protocol errors like Postern's: recorded and
   * counted against max_errors. Not the 503 to an RCPT or DATA pipelined behind a refused MAIL or RCPT: the
   * client sent it before it could see the refusal (RFC 2920 3.1), so it is no error of its own.
   * Every reply hands the turn back to the client, which starts its request clock.
   */
  send(code: number, data?: string | string[], context?: string | false): void {
    const self = this.self;
    const afterRefusal = code === 503 && this.pipelined && this.txnRefused && (this.lastCommand === 'RCPT' || this.lastCommand === 'DATA');
    if (code >= 400 && (this.lastCommand === 'MAIL' || this.lastCommand === 'RCPT')) this.txnRefused = true;
    if (typeof data === 'string' && ENHANCED.test(data)) proto.send.call(this, code, data, false);
    else if (code >= 500 && !afterRefusal && !self._closing && !self._closed && this.hooks) {
      const text = Array.isArray(data) ? data.join(' ') : (data ?? '');
      const kind = code === 503 ? 'bad_sequence' : code === 501 ? 'syntax' : 'refused_command';
      this.hooks.protocolError(this, kind, `${this.lastCommand} ${code} ${text}`.slice(0, 200));
      if (++this.errors >= this.hooks.maxErrors) {
        this.hooks.protocolError(this, 'too_many_errors', String(this.errors));
        return this.reply(REPLY.tooManyErrors);
      }
      proto.send.call(this, code, data, context);
    } else proto.send.call(this, code, data, context);
    // A 250 to the end of DATA is an accepted message: the junk-command allowance starts again.
    if (code === 250 && this.lastCommand === 'DATA') this.junk = 0;
    if (code !== 421 && code !== 221) this.startClock();
  }

  _createParser(): PosternStream {
    const parser = new PosternStream({ maxCommandLength: 16 * 1024 });
    parser.oncommand = (command: Buffer, callback?: () => void) => this._onCommand(command, callback);
    parser.oninput = (chunk: Buffer) => this.onInput(chunk);
    // Only a line longer than 16 KiB without its end gets here: the buffered part is dropped and the session ends.
    parser.on('error', (err: Error) => {
      this.hooks.protocolError(this, 'line_too_long', err.message);
      this.reply(REPLY.lineTooLongClosing);
    });
    return parser;
  }

  /** Every chunk from the client, before it is parsed. */
  private onInput(chunk: Buffer): void {
    const self = this.self;
    if (!self._ready && !self._closing && !self._closed && this.hooks) {
      // Postfix postscreen's pregreet test: any octet before the greeting, a whole line or not, is refused.
      this.hooks.earlyTalker(this, chunk.toString('latin1').slice(0, 80));
      this.reply(REPLY.earlyTalker);
      return;
    }
    if (this.reqStart) this.reqBytes += chunk.length;
  }

  _onCommand(command: Buffer, callback?: () => void): void {
    const self = this.self;
    const parser = self._parser;
    const { bareLf, following } = parser ? parser.consumeLine(command.length) : { bareLf: false, following: 0 };
    const next = callback ?? (() => undefined);
    this.stopClock();
    if (self._upgrading) return proto._onCommand.call(this, command, callback);
    if (!self._ready) {
      if (self._closing || self._closed) return next();
      this.hooks.earlyTalker(this, command.toString('latin1').slice(0, 80));
      this.reply(REPLY.earlyTalker);
      return next();
    }
    if (self._dataStream) return proto._onCommand.call(this, command, callback);
    const text = command.toString('latin1');
    const name = text.split(/[ :]/, 1)[0].toUpperCase();
    this.lastCommand = name;
    this.pipelined = this.lastFollowing > 0;
    this.lastFollowing = following;
    if (name === 'MAIL' || name === 'RSET' || name === 'EHLO' || name === 'HELO') this.txnRefused = false;
    if (bareLf && !this.bareLfNoted) {
      // RFC 5321 2.3.8 wants CRLF; accepted like Postfix's "normalize", but noted.
      this.bareLfNoted = true;
      this.hooks.protocolError(this, 'bare_lf_command', name);
    }
    if (command.length + 2 > this.hooks.maxCommandLine) {
      this.hooks.protocolError(this, 'line_too_long', `${name} ${command.length + 2} octets`);
      return this.fail(REPLY.lineTooLong, next);
    }
    if (text.includes('\r') || text.includes('\0')) {
      this.hooks.protocolError(this, text.includes('\0') ? 'nul_in_command' : 'bare_cr_in_command', name);
      return this.fail(REPLY.syntaxError, next);
    }
    if (/^[A-Za-z0-9-]+:/.test(text)) return this.end('header_as_command', text.slice(0, 60), REPLY.headerAsCommand, next);
    if (FORBIDDEN.has(name)) return this.end('forbidden_command', text.slice(0, 60), REPLY.forbiddenCommand, next);
    if (name === 'BDAT') {
      // CHUNKING is not offered (RFC 3030). The chunk that follows has a length and no terminator, so there is
      // no safe place to resume parsing: reading on would run the chunk's bytes as commands. End the session.
      return this.end('bdat', `${text.slice(0, 40)}; ${following} octets followed`, REPLY.bdatNotSupported, next);
    }
    if (following > 0 && SYNC_POINTS.has(name)) {
      const peek = parser ? JSON.stringify(parser.pending(64)) : '';
      return this.end('pipelining', `${following} octets after ${name}: ${peek}`, REPLY.pipelining, next);
    }
    if (!COMMANDS.has(name)) {
      this.hooks.protocolError(this, 'unknown_command', text.slice(0, 40));
      return this.fail(REPLY.unknownCommand, next);
    }
    if (JUNK.has(name) && ++this.junk > JUNK_LIMIT) {
      if (this.junk === JUNK_LIMIT + 1) this.hooks.protocolError(this, 'junk_commands', `${JUNK_LIMIT} commands without a message`);
      if (++this.errors >= this.hooks.maxErrors) {
        this.hooks.protocolError(this, 'too_many_errors', String(this.errors));
        this.reply(REPLY.tooManyErrors);
        return next();
      }
    }
    return proto._onCommand.call(this, command, callback);
  }

  private fail(r: SmtpReply, next: () => void): void {
    this.errors++;
    if (this.errors >= this.hooks.maxErrors) {
      this.hooks.protocolError(this, 'too_many_errors', String(this.errors));
      this.reply(REPLY.tooManyErrors);
    } else this.reply(r);
    setImmediate(next);
  }

  /** Records a violation, answers and closes; the parser stops dispatching what is still buffered. */
  private end(kind: string, detail: string, r: SmtpReply, next: () => void): void {
    this.hooks.protocolError(this, kind, detail);
    this.reply(r, true);
    next();
  }

  handler_EHLO(command: Buffer, callback: () => void): void {
    proto.handler_EHLO.call(this, command, () => {
      if (this.self.hostNameAppearsAs) this.hooks.helo(this, this.self.hostNameAppearsAs);
      callback();
    });
  }

  handler_HELO(command: Buffer, callback: () => void): void {
    proto.handler_HELO.call(this, command, () => {
      if (this.self.hostNameAppearsAs) this.hooks.helo(this, this.self.hostNameAppearsAs);
      callback();
    });
  }

  /**
   * smtp-server turns an A-label (xn--…) into its U-label before any hook sees it. A client that sent only ASCII
   * gets its address kept as sent: the downstream may not speak SMTPUTF8, and an ASCII address must not be
   * refused as 8-bit. The U-label goes along for the analysis of look-alike domains.
   */
  _parseAddressCommand(name: string, command: Buffer | string): ParsedAddress | false {
    const parsed = proto._parseAddressCommand.call(this, name, command);
    // RFC 5321 4.1.1.3: `RCPT TO:<postmaster>` is this host's postmaster. Given its domain here, before
    // smtp-server files the recipient, so it is stored, routed and de-duplicated as the address it stands for.
    if (parsed && parsed.address.toLowerCase() === 'postmaster' && /^rcpt/i.test(name)) return { ...parsed, address: this.hooks.postmaster };
    // eslint-disable-next-line no-control-regex
    if (!parsed || !parsed.address || /^[\x00-\x7f]*$/.test(parsed.address)) return parsed;
    const raw = typeof command === 'string' ? command : command.toString('latin1');
    if (/[^\x00-\x7f]/.test(raw)) return parsed;
    const at = parsed.address.lastIndexOf('@');
    const ascii = domainToASCII(parsed.address.slice(at + 1));
    if (at < 0 || !ascii) return parsed;
    return { ...parsed, address: parsed.address.slice(0, at + 1) + ascii, unicode: parsed.address };
  }

  /** A declared SIZE over the limit (RFC 1870) gets the catalogue reply and an event, like every other refusal. */
  _validateMailParams(parsed: ParsedAddress): ParamError | null {
    const err = proto._validateMailParams.call(this, parsed);
    if (err?.code !== 552) return err;
    const r = REPLY.sizeDeclaredTooBig;
    this.hooks.mailRefused(this, parsed.address, 'size_declared', r);
    return { code: r.code, message: `${r.enhanced} ${r.text}`, enhancedCode: null };
  }

  /** Size is enforced by the gateway's onData with its own reply, so smtp-server's check stands down. */
  _isOversized(): boolean {
    return false;
  }

  /** The idle timeout, with Postern's reply and an event; while the server has the turn it does not count. */
  _onTimeout(): void {
    const self = this.self;
    const parser = self._parser;
    if (self._closing || self._handlerPending || (self._dataStream && parser && !parser._dataMode)) return proto._onTimeout.call(this);
    this.hooks.timeout(this, self._upgrading ? 'tls_handshake' : 'idle', {});
    this.reply(REPLY.idleTimeout);
  }

  private startClock(): void {
    this.reqStart = Date.now();
    this.reqBytes = 0;
    if (!this.reqTimer && this.hooks) this.armClock(this.hooks.requestTimeoutMs);
  }

  private stopClock(): void {
    this.reqStart = 0;
  }

  private armClock(ms: number): void {
    this.reqTimer = setTimeout(() => this.checkClock(), ms);
    this.reqTimer.unref();
  }

  /** One timer per connection, re-armed to the current deadline rather than created for every request. */
  private checkClock(): void {
    const self = this.self;
    this.reqTimer = null;
    if (!this.reqStart || self._closing || self._closed) return;
    const parser = self._parser;
    if (self._handlerPending || (self._dataStream && parser && !parser._dataMode)) {
      // The server has the turn (a hook, or the decision on a message that is in); its reply restarts the clock.
      this.reqStart = 0;
      return;
    }
    const allowance = (this.reqBytes * 1000) / MIN_DATA_RATE;
    const left = this.reqStart + this.hooks.requestTimeoutMs + allowance - Date.now();
    if (left > 0) return this.armClock(left);
    // Nothing at all since the reply is plain silence, which the idle timeout answers. A TLS handshake is not
    // read by the parser, so there the deadline applies whatever arrived.
    if (this.reqBytes === 0 && !self._upgrading) return this.armClock(this.hooks.requestTimeoutMs);
    const kind: TimeoutKind = self._upgrading ? 'tls_handshake' : parser && parser._dataMode ? 'data_rate' : 'request';
    this.hooks.timeout(this, kind, { elapsed_ms: Date.now() - this.reqStart, bytes: this.reqBytes });
    this.reply(REPLY.requestTimeout);
  }

  _onClose(): void {
    if (this.deadline) clearTimeout(this.deadline);
    if (this.reqTimer) clearTimeout(this.reqTimer);
    this.reqStart = 0;
    const wasClosed = this.self._closed;
    proto._onClose.call(this);
    if (!wasClosed) this.hooks.closed(this);
  }
}
