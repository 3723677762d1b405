// One submission login attempt through the proxy: live policies first (login-gate.ts), then Postern's own AUTH PLAIN
// to the server, the login event from the server's answer, and the progressive delay of a failure reply. The
// password goes to the server and nowhere else: not to a log, not to an event.
import { loginFailed, loginGate, loginSucceeded } from '../login-gate.ts';
import type { LoginResult } from '../upstream.ts';
import type { SubmissionSession } from './session.ts';
import { upstreamLogin } from './upstream.ts';

export interface LoginAttempt {
  user: Buffer;
  password: Buffer;
  /** AUTH PLAIN or AUTH LOGIN, for the event. */
  method: string;
}

export type LoggedIn = Extract<LoginResult, { kind: 'ok' }>;

/** The server's own trouble (RFC 4954 §6: 454 temporary failure; any 4xx): not a wrong password, it counts against nobody. */
const SERVER_TROUBLE = /^4/;

/** Resolves to the server connection on success; on failure the client was already answered and null comes back. */
export async function attemptLogin(s: SubmissionSession, a: LoginAttempt): Promise<LoggedIn | null> {
  const { ctx, facts } = s;
  const user = a.user.toString('utf8');
  const gate = await loginGate(ctx, 'submission', facts, user, a.method, () => s.state === 'closed');
  if (gate.kind === 'closed') return null;
  if (gate.kind === 'refused') {
    s.write('535 5.7.8 Authentication credentials invalid\r\n');
    return null;
  }
  const up = ctx.cfg.upstream;
  const upstreamError = (reason: string, detail?: string, more: Record<string, unknown> = {}) =>
    ctx.emit('submission.upstream_error', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, reason, detail, server: `${up.host}:${up.port}`, ...more } });
  const client = up.forward_client_ip ? { ip: facts.ip, port: facts.port, session: facts.id } : null;
  const res = await upstreamLogin(up, { user: a.user, password: a.password, hostname: ctx.cfg.hostname, client }, upstreamError);
  if (res.kind === 'unavailable') {
    upstreamError(res.reason, res.detail);
    s.write('454 4.7.0 Temporary authentication failure, try again later\r\n');
    return null;
  }
  if (res.kind === 'ok') {
    loginSucceeded(ctx, 'submission', facts, user, a.method, gate.tarpitMs);
    return res;
  }
  if (SERVER_TROUBLE.test(res.text)) {
    upstreamError('server_refused', res.text.slice(0, 200), { user });
    s.write('454 4.7.0 Temporary authentication failure, try again later\r\n');
    return null;
  }
  await loginFailed(ctx, 'submission', facts, user, a.method, gate.tarpitMs);
  s.write('535 5.7.8 Authentication credentials invalid\r\n');
  return null;
}
