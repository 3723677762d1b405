// The part of a monitor proxy's client connection that is the same in every protocol: the refusal or greeting at
// connect, the login timer, the TLS upgrade, holding input while a login is pending, the hand-over to the splice,
// and the ways a session ends. Each protocol's session adds its own commands and words (imap/, pop3/).
import type net from 'node:net';
import tls from 'node:tls';
import type { EventType } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Protocol } from './login-gate.ts';
import type { ProxySession, SessionContext } from './proxy.ts';
import { SessionFacts, tlsFacts } from './session.ts';
import { AuditTrail } from './audit/trail.ts';
import { sniffProxyHeader, UNTRUSTED_HEADER } from './proxy-protocol.ts';

/** What the session needs of a protocol's command reader. */
export interface HeldInput {
  feed(b: Buffer): void;
  pause(): void;
  resume(): void;
  /** Drops what was held unread; returns how many octets. */
  discardBuffered(): number;
  readonly buffered: number;
}

/** What the session needs of a protocol's splice. */
export interface SpliceEnd {
  inject(line: string): void;
  stop(): void;
}

export interface SessionConfig {
  login_timeout_s: number;
  max_bad_commands: number;
}

/** The protocol's own lines for what every session says. */
export interface SessionWords {
  protocol: Protocol;
  /** To a client whose address a live policy blocks. */
  refused: string;
  inactive: string;
  internalError: string;
  /** The protocol's answer to a bad command before login; `ref` is its tag or command name. */
  bad: (ref: string | null, text: string) => string;
  /** The last line before max_bad_commands end the session. */
  tooManyBad: string;
  /** What the protocol_error event calls `ref`. */
  refField: 'tag' | 'command';
}

export abstract class ClientSession<C extends SessionConfig, P extends SpliceEnd> implements ProxySession {
  readonly facts: SessionFacts;
  sock: net.Socket;
  state: 'prelogin' | 'login' | 'proxy' | 'closed' = 'prelogin';
  protected loginTimer: NodeJS.Timeout | null = null;
  private bad = 0;
  protected splice: P | null = null;
  /** The audit trail, when the user who logged in is audited (decided once, at login). */
  audit: AuditTrail | null = null;
  /** The session's first octets, until they cannot be a PROXY header (one that a trusted balancer sent is gone by now). */
  private head: Buffer | null = Buffer.alloc(0);
  protected readonly onData = (d: Buffer) => {
    this.facts.bytesIn += d.length;
    if (this.head) {
      this.head = Buffer.concat([this.head, d.subarray(0, 16)]).subarray(0, 16);
      const sniff = sniffProxyHeader(this.head);
      if (sniff === 'yes') {
        this.protocolError('proxy_header', UNTRUSTED_HEADER, null);
        return this.end('proxy_header');
      }
      if (sniff === 'no') this.head = null;
    }
    try {
      this.input().feed(d);
    } catch (err) {
      return this.fail(err as Error);
    }
    // While a login is pending the reader holds what arrives; past holdLimit, stop reading instead.
    if (this.state === 'login' && this.input().buffered > this.holdLimit()) this.sock.pause();
  };

  constructor(
    readonly ctx: SessionContext<C>,
    socket: net.Socket,
    private readonly onClosed: (s: ProxySession) => void,
    private readonly words: SessionWords,
  ) {
    this.sock = socket;
    this.facts = new SessionFacts(socket);
  }

  /** The protocol's command reader. */
  protected abstract input(): HeldInput;
  /** How many octets may wait unread while a login is pending. */
  protected abstract holdLimit(): number;
  protected abstract greeting(): string;

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
      ctx.emit(`${this.words.protocol}.connect.refused` satisfies EventType, { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, policy: block.id, reason: block.reason } });
      this.write(this.words.refused);
      return this.end('blocked');
    }
    ctx.emit(`${this.words.protocol}.connect` satisfies EventType, { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, tls: facts.tls, port: facts.port } });
    this.sock.on('data', this.onData);
    this.loginTimer = setTimeout(() => {
      this.write(this.words.inactive);
      this.end('login_timeout');
    }, ctx.cfg.login_timeout_s * 1000);
    this.loginTimer.unref();
    this.write(this.greeting());
  }

  write(s: string | Buffer): void {
    if (this.state === 'closed') return;
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    this.facts.bytesOut += b.length;
    this.sock.write(b);
  }

  /** Counts a protocol error and records it as an event; `ref` is the tag or command it concerns. */
  protocolError(kind: string, text: string, ref: string | null): void {
    this.facts.errors++;
    this.ctx.emit(`${this.words.protocol}.protocol_error` satisfies EventType, {
      ip: this.facts.ip,
      conn_id: this.facts.id,
      data: { session: this.facts.id, kind, detail: text, [this.words.refField]: ref, logged_in: this.state === 'proxy', user: this.facts.user },
    });
  }

  /** Answers a bad command before login; max_bad_commands of them end the session (IM-08, PO-07). */
  protected badCommand(ref: string | null, text: string, kind: string): void {
    this.write(this.words.bad(ref, text));
    this.protocolError(kind, text, ref);
    if (++this.bad >= this.ctx.cfg.max_bad_commands) {
      this.protocolError('too_many_bad_commands', `${this.bad} invalid commands before login`, null);
      this.write(this.words.tooManyBad);
      this.end('too_many_bad_commands');
    }
  }

  /**
   * Answers the protocol's STARTTLS and starts TLS on the client's socket. Nothing the client sent after the
   * command in the clear may be read once TLS is up (CVE-2011-0411, IM-09, PO-02): the reader holds it from here,
   * and it is dropped when the reply is out (by then the rest of the segment that carried the command is held too).
   */
  protected startTls(reply: string, verb: string, ref: string | null): void {
    const raw = this.sock;
    this.input().pause();
    raw.write(reply, () => this.upgrade(raw, verb, ref));
  }

  /** Called once the clear-text part of the session is over, before the handshake. */
  protected forgetClearText(): void {}

  private upgrade(raw: net.Socket, verb: string, ref: string | null): void {
    if (this.state === 'closed') return;
    raw.removeListener('data', this.onData);
    const dropped = this.input().discardBuffered();
    if (dropped) this.protocolError('starttls_injection', `${dropped} octets sent after ${verb} before the handshake were dropped`, ref);
    this.forgetClearText();
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
        this.input().resume();
      } catch (err) {
        this.fail(err as Error);
      }
    });
  }

  /**
   * Holds the client's input while `attempt` runs; on success `proxy` hands the session to the splice, on failure
   * (the client was already answered) the session reads commands again.
   */
  protected pendLogin<R extends { socket: net.Socket }>(attempt: () => Promise<R | null>, proxy: (result: R) => void): void {
    this.state = 'login';
    this.input().pause();
    attempt()
      .then((result) => {
        if (this.state === 'closed') return result?.socket.destroy();
        this.sock.resume();
        if (!result) {
          this.state = 'prelogin';
          return this.input().resume();
        }
        if (this.loginTimer) clearTimeout(this.loginTimer);
        this.state = 'proxy';
        this.audit = AuditTrail.start(this.ctx.auditUsers, this.ctx.emit, this.words.protocol, this.facts);
        proxy(result);
      })
      .catch((err: Error) => this.fail(err));
  }

  /** A bug met in this session ends this session only, never the process. */
  fail(err: Error): void {
    this.log.error({ err: err.message, stack: err.stack, session: this.facts.id }, `${this.words.protocol} session failed`);
    this.protocolError('internal_error', err.message, null);
    if (this.state === 'proxy') this.splice?.inject(this.words.internalError);
    else this.write(this.words.internalError);
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
    this.input().pause();
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.splice?.stop();
    this.sock.removeListener('data', this.onData);
    this.ctx.emit(`${this.words.protocol}.close` satisfies EventType, { ip: this.facts.ip, conn_id: this.facts.id, data: this.facts.summary(reason) });
    this.audit?.end(reason);
    this.onClosed(this);
  }
}
