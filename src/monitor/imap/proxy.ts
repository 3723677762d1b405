// The IMAP monitor proxy: a listener with STARTTLS (143) and, when configured, one with implicit TLS (993), each
// connection an ImapSession in front of the configured IMAP server.
import net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../../config/schema.ts';
import type { Emit } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { PolicyTable } from '../../policy/live.ts';
import { LoginGuard } from '../guard.ts';
import type { KnownLogins } from '../known-logins.ts';
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

export interface Listening {
  host: string;
  port: number;
  /** The implicit-TLS listener's port; null when listen_tls is empty. */
  tlsPort: number | null;
}

export class ImapProxy {
  private readonly ctx: ImapContext;
  private readonly sessions = new Set<ImapSession>();
  private readonly plain: net.Server;
  private readonly implicit: tls.Server;

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
    this.plain = net.createServer(accept);
    this.implicit = tls.createServer({ key: deps.tls.key, cert: deps.tls.cert }, accept);
    // A client that fails the TLS handshake never becomes a session; it is not worth more than a debug line.
    this.implicit.on('tlsClientError', (err) => deps.log.debug({ err: err.message }, 'imap tls handshake failed'));
    for (const srv of [this.plain, this.implicit]) srv.on('error', (err) => deps.log.warn({ err: err.message }, 'imap listener error'));
  }

  async listen(plain: { host: string; port: number }, implicit: { host: string; port: number } | null): Promise<Listening> {
    const on = (srv: net.Server, host: string, port: number) =>
      new Promise<net.AddressInfo>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, host, () => {
          srv.removeListener('error', reject);
          resolve(srv.address() as net.AddressInfo);
        });
      });
    const a = await on(this.plain, plain.host, plain.port);
    const b = implicit ? await on(this.implicit, implicit.host, implicit.port) : null;
    return { host: a.address, port: a.port, tlsPort: b?.port ?? null };
  }

  /** Stops listening and ends every session with a BYE. */
  async close(): Promise<void> {
    const closing = [this.plain, this.implicit].filter((s) => s.listening).map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const s of [...this.sessions]) {
      s.write('* BYE Server shutting down.\r\n');
      s.end('shutdown');
    }
    await Promise.all(closing);
  }
}
