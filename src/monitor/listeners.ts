// The two listeners of a monitor proxy, whatever the protocol: one in the clear that offers the protocol's
// STARTTLS, and, when configured, one with implicit TLS; both hand each accepted socket to the protocol's session.
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../core/log.ts';
import { proxiedAccept, type ProxyProtocolOptions } from './proxy-protocol.ts';

export interface Listening {
  host: string;
  port: number;
  /** The implicit-TLS listener's port; null when listen_tls is empty. */
  tlsPort: number | null;
}

export interface HostPort {
  host: string;
  port: number;
}

/** monitor.proxy_protocol for a protocol's listeners: a socket whose PROXY header was bad is `refused` with why. */
export interface ProxyProtocolHook {
  opts: ProxyProtocolOptions;
  refused: (socket: net.Socket, detail: string) => void;
}

export class ProxyListeners {
  private readonly plain: net.Server;
  private readonly implicit: net.Server;

  constructor(name: string, pems: { key: string; cert: string }, accept: (socket: net.Socket) => void, log: Logger, proxy?: ProxyProtocolHook) {
    const pp = proxy?.opts.trusted.length ? proxy : null;
    this.plain = net.createServer(pp ? proxiedAccept(pp.opts, accept, pp.refused) : accept);
    if (pp) {
      // The header comes before the TLS handshake, so the implicit-TLS port is a plain server that runs TLS itself.
      this.implicit = net.createServer(proxiedAccept(pp.opts, accept, pp.refused, tls.createSecureContext({ key: pems.key, cert: pems.cert })));
    } else {
      const implicit = tls.createServer({ key: pems.key, cert: pems.cert }, accept);
      // A client that fails the TLS handshake never becomes a session; it is not worth more than a debug line.
      implicit.on('tlsClientError', (err) => log.debug({ err: err.message }, `${name} tls handshake failed`));
      this.implicit = implicit;
    }
    for (const srv of [this.plain, this.implicit]) srv.on('error', (err) => log.warn({ err: err.message }, `${name} listener error`));
  }

  async listen(plain: HostPort, implicit: HostPort | null): Promise<Listening> {
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

  /** Stops listening; resolves when both servers are closed (sessions are the caller's to end). */
  close(): Promise<void> {
    const closing = [this.plain, this.implicit].filter((s) => s.listening).map((s) => new Promise<void>((r) => s.close(() => r())));
    return Promise.all(closing).then(() => undefined);
  }
}
