// The POP3 monitor proxy: a listener with STLS (110) and, when configured, one with implicit TLS (995), each
// connection a Pop3Session in front of the configured POP3 server.
import type net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../../config/schema.ts';
import type { Emit } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { PolicyTable } from '../../policy/live.ts';
import { LoginGuard } from '../guard.ts';
import type { KnownLogins } from '../known-logins.ts';
import { ProxyListeners, type HostPort, type Listening } from '../listeners.ts';
import { Pop3Session, type Pop3Context } from './session.ts';

export interface Pop3ProxyDeps {
  config: Config;
  policies: PolicyTable;
  emit: Emit;
  log: Logger;
  tls: { key: string; cert: string };
  /** The addresses users logged in from, for protect policies. */
  known?: KnownLogins;
}

export class Pop3Proxy {
  private readonly ctx: Pop3Context;
  private readonly sessions = new Set<Pop3Session>();
  private readonly listeners: ProxyListeners;

  constructor(deps: Pop3ProxyDeps) {
    const cfg = deps.config.monitor.pop3;
    this.ctx = {
      cfg,
      secureContext: tls.createSecureContext({ key: deps.tls.key, cert: deps.tls.cert }),
      guard: new LoginGuard(deps.policies, {
        failureDelayMs: cfg.failure_delay_ms,
        failureDelayMaxMs: cfg.failure_delay_max_ms,
        failureWindowS: cfg.failure_window_s,
      }, deps.known),
      emit: deps.emit,
      log: deps.log,
    };
    const accept = (socket: net.Socket) => {
      const s = new Pop3Session(this.ctx, socket, (x) => this.sessions.delete(x));
      this.sessions.add(s);
      s.start();
    };
    this.listeners = new ProxyListeners('pop3', deps.tls, accept, deps.log);
  }

  listen(plain: HostPort, implicit: HostPort | null): Promise<Listening> {
    return this.listeners.listen(plain, implicit);
  }

  /** Stops listening and ends every session with an -ERR. */
  async close(): Promise<void> {
    const closing = this.listeners.close();
    for (const s of [...this.sessions]) {
      s.write('-ERR Server shutting down.\r\n');
      s.end('shutdown');
    }
    await closing;
  }
}
