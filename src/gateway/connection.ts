// smtp-server's connection with Postern's protocol enforcement: greeting pause as a policy, early talkers,
// command-line limits, bare CR/NUL in commands, header-shaped commands, RFC 2920 synchronization, session deadline.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPServer } from 'smtp-server';
import { PosternStream } from './data-reader.ts';
import { REPLY, type SmtpReply } from '../core/reply.ts';

/** What the connection reports to the gateway. */
export interface ConnectionHooks {
  /** Decides the greeting pause for a new connection, or refuses it. */
  beforeGreeting(conn: PosternConnection): Promise<{ pauseMs: number } | { refuse: SmtpReply }>;
  protocolError(conn: PosternConnection, kind: string, detail: string): void;
  earlyTalker(conn: PosternConnection, bytes: string): void;
  helo(conn: PosternConnection, name: string): void;
  closed(conn: PosternConnection): void;
  maxCommandLine: number;
  maxErrors: number;
  sessionTimeoutMs: number;
}

interface Internals {
  _ready: boolean;
  _closing: boolean;
  _closed: boolean;
  _parser: PosternStream;
  _dataStream: unknown;
  _server: SMTPServer & { options: Record<string, unknown>; connections: Set<unknown> };
  _setListeners(cb: () => void): void;
  connectionReady(): void;
  _onCommand(command: Buffer, callback?: () => void): void;
  _createParser(): PosternStream;
  handler_EHLO(command: Buffer, callback: () => void): void;
  handler_HELO(command: Buffer, callback: () => void): void;
  send(code: number, data?: string | string[], context?: string | false): void;
  close(): void;
  _onClose(): void;
  remoteAddress: string;
  hostNameAppearsAs: string | false;
  id: string;
}

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
// RFC 2920 3.1: these may only be the last command of a pipelined group.
const SYNC_POINTS = new Set(['EHLO', 'HELO', 'DATA', 'STARTTLS', 'AUTH']);

export class PosternConnection extends (SMTPConnection as unknown as new (server: SMTPServer, socket: unknown, opts: unknown) => object) {
  hooks!: ConnectionHooks;
  pauseMs = 0;
  errors = 0;
  startedAt = Date.now();
  bareLfNoted = false;
  private deadline: NodeJS.Timeout | null = null;

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
      if (!self._closed) this.reply(REPLY.sessionTimeout, true);
    }, this.hooks.sessionTimeoutMs);
    this.deadline.unref();
  }

  /** Sends a catalogue reply; 421 and `close` end the session. */
  reply(r: SmtpReply, close = false): void {
    this.self.send(r.code, `${r.enhanced} ${r.text}`);
    if (close && r.code !== 421) this.self.close();
  }

  /** Our replies carry their own enhanced code; smtp-server's table must not add a second (or a wrong) one. */
  send(code: number, data?: string | string[], context?: string | false): void {
    const proto = SMTPConnection.prototype as unknown as Internals;
    if (typeof data === 'string' && ENHANCED.test(data)) return proto.send.call(this, code, data, false);
    return proto.send.call(this, code, data, context);
  }

  _createParser(): PosternStream {
    const parser = new PosternStream({ maxCommandLength: 16 * 1024 });
    parser.oncommand = (command: Buffer, callback?: () => void) => this._onCommand(command, callback);
    parser.on('error', (err: Error) => this.self.send(421, 'Error: ' + err.message));
    return parser;
  }

  _onCommand(command: Buffer, callback?: () => void): void {
    const self = this.self;
    const proto = SMTPConnection.prototype as unknown as Internals;
    const parser = self._parser;
    const { bareLf, following } = parser ? parser.consumeLine(command.length) : { bareLf: false, following: 0 };
    const next = callback ?? (() => undefined);
    if (!self._ready) {
      if (self._closing || self._closed) return next();
      this.hooks.earlyTalker(this, command.toString('latin1').slice(0, 80));
      this.reply(REPLY.earlyTalker);
      return next();
    }
    if (self._dataStream) return proto._onCommand.call(this, command, callback);
    const text = command.toString('latin1');
    const name = text.split(/[ :]/, 1)[0].toUpperCase();
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
    if (/^[A-Za-z0-9-]+:/.test(text)) {
      this.hooks.protocolError(this, 'header_as_command', text.slice(0, 60));
      this.reply(REPLY.headerAsCommand, true);
      return next();
    }
    if (following > 0 && SYNC_POINTS.has(name)) {
      this.hooks.protocolError(this, 'pipelining', `${following} octets after ${name}`);
      this.reply(REPLY.pipelining, true);
      return next();
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

  handler_EHLO(command: Buffer, callback: () => void): void {
    const proto = SMTPConnection.prototype as unknown as Internals;
    proto.handler_EHLO.call(this, command, () => {
      if (this.self.hostNameAppearsAs) this.hooks.helo(this, this.self.hostNameAppearsAs);
      callback();
    });
  }

  handler_HELO(command: Buffer, callback: () => void): void {
    const proto = SMTPConnection.prototype as unknown as Internals;
    proto.handler_HELO.call(this, command, () => {
      if (this.self.hostNameAppearsAs) this.hooks.helo(this, this.self.hostNameAppearsAs);
      callback();
    });
  }

  /** Size is enforced by the gateway's onData with its own reply, so smtp-server's check stands down. */
  _isOversized(): boolean {
    return false;
  }

  _onClose(): void {
    const proto = SMTPConnection.prototype as unknown as Internals;
    if (this.deadline) clearTimeout(this.deadline);
    const wasClosed = this.self._closed;
    proto._onClose.call(this);
    if (!wasClosed) this.hooks.closed(this);
  }
}
