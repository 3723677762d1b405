// A monitor proxy, whatever the protocol: the context every session shares (the live policies' login guard, TLS,
// events), its listeners, the set of open sessions, and a shutdown that says goodbye in the protocol's words.
import type net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../config/schema.ts';
import { EVENT_TYPES, type Emit, type EventType } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { PolicyTable } from '../policy/live.ts';
import { LoginGuard } from './guard.ts';
import type { KnownLogins } from './known-logins.ts';
import type { AuditMatcher } from './audit/users.ts';
import { ProxyListeners, type HostPort, type Listening, type ProxyProtocolHook } from './listeners.ts';

export interface ProxyDeps {
  config: Config;
  policies: PolicyTable;
  emit: Emit;
  log: Logger;
  tls: { key: string; cert: string };
  /** The addresses users logged in from, for protect policies. */
  known?: KnownLogins;
  /** Who is audited: the config's and the store's patterns (audit/users.ts); monitor.audit.users alone without it. */
  audited?: AuditMatcher;
}

/** The settings of a protocol's section that the shared parts read. */
export interface GuardedConfig {
  failure_delay_ms: number;
  failure_delay_max_ms: number;
  failure_window_s: number;
}

/** What every session of one proxy shares; cfg is the protocol's own section of the config. */
export interface SessionContext<C> {
  cfg: C;
  secureContext: tls.SecureContext;
  guard: LoginGuard;
  emit: Emit;
  log: Logger;
  /** Whose sessions leave an audit trail: monitor.audit.users and the store's audited users. */
  auditUsers: readonly string[] | AuditMatcher;
}

export interface ProxySession {
  start(): void;
  write(s: string): void;
  end(reason: string): void;
}

export interface ProxyProtocol<C, S extends ProxySession> {
  /** Names the listeners in logs. */
  name: string;
  cfg: C;
  session: (ctx: SessionContext<C>, socket: net.Socket, onClosed: (s: ProxySession) => void) => S;
  /** Written to every open session at shutdown. */
  shutdownLine: string;
}

export class MonitorProxy<C extends GuardedConfig, S extends ProxySession> {
  private readonly sessions = new Set<ProxySession>();
  private readonly listeners: ProxyListeners;

  constructor(
    deps: ProxyDeps,
    private readonly protocol: ProxyProtocol<C, S>,
  ) {
    const { cfg } = protocol;
    const ctx: SessionContext<C> = {
      cfg,
      secureContext: tls.createSecureContext({ key: deps.tls.key, cert: deps.tls.cert }),
      guard: new LoginGuard(deps.policies, {
        failureDelayMs: cfg.failure_delay_ms,
        failureDelayMaxMs: cfg.failure_delay_max_ms,
        failureWindowS: cfg.failure_window_s,
      }, deps.known),
      emit: deps.emit,
      log: deps.log,
      auditUsers: deps.audited ?? deps.config.monitor.audit.users,
    };
    const accept = (socket: net.Socket) => {
      const s = protocol.session(ctx, socket, (x) => this.sessions.delete(x));
      this.sessions.add(s);
      s.start();
    };
    this.listeners = new ProxyListeners(protocol.name, deps.tls, accept, deps.log, proxyProtocolHook(deps, protocol.name));
  }

  listen(plain: HostPort, implicit: HostPort | null): Promise<Listening> {
    return this.listeners.listen(plain, implicit);
  }

  /** Stops listening and ends every session with the protocol's shutdown line. */
  async close(): Promise<void> {
    const closing = this.listeners.close();
    for (const s of [...this.sessions]) {
      s.write(this.protocol.shutdownLine);
      s.end('shutdown');
    }
    await closing;
  }
}

/**
 * monitor.proxy_protocol for the listeners of protocol `name` (imap, pop3, …): a trusted balancer's bad or missing
 * header is that protocol's protocol_error, with the balancer's address.
 */
export function proxyProtocolHook(deps: Pick<ProxyDeps, 'config' | 'emit'>, name: string): ProxyProtocolHook {
  const pp = deps.config.monitor.proxy_protocol;
  const type = `${name}.protocol_error`;
  return {
    opts: { trusted: pp.trusted, headerTimeoutMs: pp.header_timeout_s * 1000 },
    refused: (socket, detail) => {
      if (!(type in EVENT_TYPES)) return;
      deps.emit(type as EventType, { ip: (socket.remoteAddress ?? '').replace(/^::ffff:/i, '') || null, data: { kind: 'proxy_header', detail, logged_in: false } });
    },
  };
}
