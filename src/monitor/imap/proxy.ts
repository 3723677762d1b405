// The IMAP monitor proxy: a listener with STARTTLS (143) and, when configured, one with implicit TLS (993), each
// connection an ImapSession in front of the configured IMAP server.
import type { Config } from '../../config/schema.ts';
import { MonitorProxy, type ProxyDeps } from '../proxy.ts';
import { ImapSession } from './session.ts';

export class ImapProxy extends MonitorProxy<Config['monitor']['imap'], ImapSession> {
  constructor(deps: ProxyDeps) {
    super(deps, {
      name: 'imap',
      cfg: deps.config.monitor.imap,
      session: (ctx, socket, onClosed) => new ImapSession(ctx, socket, onClosed),
      shutdownLine: '* BYE Server shutting down.\r\n',
    });
  }
}
