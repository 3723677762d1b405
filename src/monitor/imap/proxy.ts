// The IMAP monitor proxy: a listener with STARTTLS (143) and, when configured, one with implicit TLS (993), each
// connection an ImapSession in front of the configured IMAP server.
import type net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../../config/schema.ts';
import type { Emit } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { PolicyTable } from '../../policy/live.ts';
import { LoginGuard } from '../guard.ts';
import type { KnownLogins } from '../known-logins.ts';
import { ProxyListeners, type HostPort, type Listening } from '../listeners.ts';
import { ImapSession, type ImapContext } from './session.ts';

export interface ImapProxyDeps {
  config: Config;
  policies: PolicyTable;
  emit: Emit;
  log: Logger;
  tls: { key: string; cert: string };
  /** The addresses users logged in from, for protect policies. */
  known?: KnownLogins;
}

export class ImapProxy {
  private readonly ctx: ImapContext;
  private readonly sessions = new Set<ImapSession>();
  private readonly listeners: ProxyListeners;

  constructor(deps: ImapProxyDeps) {
    const cfg = deps.config.monitor.imap;
    const secureContext = tls.createSecureContext({ key: deps.tls.key, cert: deps.tls.cert });
    this.ctx = {
      cfg,
      secureContext,
      guard: new LoginGuard(deps.policies, {
        failureDelayMs: cfg.failure_delay_ms,
        failureDelayMaxMs: cfg.failure_delay_max_ms,
        failureWindowS: cfg.failure_window_s,
      }, deps.known),
      emit: deps.emit,
      log: deps.log,
    };
    const accept = (socket: net.Socket) => {
      const s = new ImapSession(this.ctx, socket, (x) => this.sessions.delete(x));
      this.sessions.add(s);
      s.start();
    };
    this.listeners = new ProxyListeners('imap', deps.tls, accept, deps.log);
  }

  listen(plain: HostPort, implicit: HostPort | null): Promise<Listening> {
    return this.listeners.listen(plain, implicit);
  }

  /** Stops listening and ends every session with a BYE. */
  async close(): Promise<void> {
    const closing = this.listeners.close();
    for (const s of [...this.sessions]) {
      s.write('* BYE Server shutting down.\r\n');
      s.end('shutdown');
    }
    await closing;
  }
}
