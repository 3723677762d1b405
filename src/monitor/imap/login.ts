// One IMAP login attempt through the proxy: live policies first (login-gate.ts), then Postern's own LOGIN to the
// server, the login event from the server's tagged answer, and the progressive delay of a failure reply. The
// password goes to the server and nowhere else: not to a log, not to an event.
import { loginFailed, loginGate, loginSucceeded } from '../login-gate.ts';
import type { LoginResult } from '../upstream.ts';
import type { ImapSession } from './session.ts';
import { upstreamLogin } from './upstream.ts';

export interface LoginAttempt {
  tag: string;
  user: Buffer;
  password: Buffer;
  /** LOGIN or AUTHENTICATE <mechanism>, for the event. */
  method: string;
  /** The client's ID fields (x-* already removed). */
  id: [string, string][];
}

export type LoggedIn = Extract<LoginResult, { kind: 'ok' }>;

/** Resolves to the server connection on success; on failure the client was already answered and null comes back. */
export async function attemptLogin(s: ImapSession, a: LoginAttempt): Promise<LoggedIn | null> {
  const { ctx, facts } = s;
  const user = a.user.toString('utf8');
  const gate = await loginGate(ctx, 'imap', facts, user, a.method, () => s.state === 'closed');
  if (gate.kind === 'closed') return null;
  if (gate.kind === 'refused') {
    s.write(`${a.tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
    return null;
  }
  const up = ctx.cfg.upstream;
  const id = [...a.id];
  if (up.forward_client_ip) {
    id.push(
      ['x-originating-ip', facts.ip],
      ['x-originating-port', String(facts.port)],
      ['x-connected-ip', s.sock.localAddress?.replace(/^::ffff:/i, '') ?? ''],
      ['x-connected-port', String(s.sock.localPort ?? 0)],
      ['x-session-ext-id', facts.id],
    );
  }
  const res = await upstreamLogin(up, { user: a.user, password: a.password, id }, (reason, detail) =>
    ctx.emit('imap.upstream_error', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, reason, detail, server: `${up.host}:${up.port}` } }),
  );
  if (res.kind === 'unavailable') {
    ctx.emit('imap.upstream_error', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, reason: res.reason, detail: res.detail, server: `${up.host}:${up.port}` } });
    s.write(`${a.tag} NO [UNAVAILABLE] Server unavailable, try again later.\r\n`);
    return null;
  }
  if (res.kind === 'ok') {
    loginSucceeded(ctx, 'imap', facts, user, a.method, gate.tarpitMs);
    return res;
  }
  // The server's own trouble (its response code says so) is not a wrong password and counts against nobody.
  if (/^\[(UNAVAILABLE|SERVERBUG|LIMIT|INUSE)\]/i.test(res.text)) {
    ctx.emit('imap.upstream_error', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, reason: 'server_refused', detail: res.text.slice(0, 200), user } });
    s.write(`${a.tag} NO ${res.text}\r\n`);
    return null;
  }
  await loginFailed(ctx, 'imap', facts, user, a.method, gate.tarpitMs);
  s.write(`${a.tag} NO ${res.text.startsWith('[') ? res.text : `[AUTHENTICATIONFAILED] ${res.text}`}\r\n`);
  return null;
}
