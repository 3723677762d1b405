// The POP3 monitor proxy: a listener with STLS (110) and, when configured, one with implicit TLS (995), each
// connection a Pop3Session in front of the configured POP3 server.
import type { Config } from '../../config/schema.ts';
import { MonitorProxy, type ProxyDeps } from '../proxy.ts';
import { Pop3Session } from './session.ts';

export class Pop3Proxy extends MonitorProxy<Config['monitor']['pop3'], Pop3Session> {
  constructor(deps: ProxyDeps) {
    super(deps, {
      name: 'pop3',
      cfg: deps.config.monitor.pop3,
      session: (ctx, socket, onClosed) => new Pop3Session(ctx, socket, onClosed),
      shutdownLine: '-ERR Server shutting down.\r\n',
    });
  }
}
