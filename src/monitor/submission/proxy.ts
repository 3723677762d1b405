// The submission monitor proxy: a listener with STARTTLS (587) and, when configured, one with implicit TLS (465),
// each connection a SubmissionSession in front of the configured submission server.
import { MonitorProxy, type ProxyDeps } from '../proxy.ts';
import { SubmissionSession, type SubmissionConfig } from './session.ts';

export class SubmissionProxy extends MonitorProxy<SubmissionConfig, SubmissionSession> {
  constructor(deps: ProxyDeps) {
    super(deps, {
      name: 'submission',
      cfg: { ...deps.config.monitor.submission, hostname: deps.config.gateway.hostname },
      session: (ctx, socket, onClosed) => new SubmissionSession(ctx, socket, onClosed),
      shutdownLine: '421 4.3.2 Server shutting down\r\n',
    });
  }
}
