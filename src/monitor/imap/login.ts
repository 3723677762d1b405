// One IMAP login attempt through the proxy: live policies first (block → refused here, tarpit → held, protect →
// refused here unless the address is one the user logged in from before), then
// Postern's own LOGIN to the server, the login event from the server's tagged answer, and the progressive delay of
// a failure reply. The password goes to the server and nowhere else: not to a log, not to an event.
import type net from 'node:net';
import { emitLogin } from '../guard.ts';
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

export interface LoggedIn {
  socket: net.Socket;
  text: string;
  capabilities: string[];
  rest: Buffer;
}

/** A function, not an inline test: TypeScript would keep the narrowing of an earlier check across the await. */
const closed = (s: ImapSession): boolean => s.state === 'closed';

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

/** Resolves to the server connection on success; on failure the client was already answered and null comes back. */
export async function attemptLogin(s: ImapSession, a: LoginAttempt): Promise<LoggedIn | null> {
  const { ctx, facts } = s;
  const user = a.user.toString('utf8');
  facts.user = user;
  facts.loginAttempts++;
  const decision = ctx.guard.atLogin(facts.ip, user);
  await sleep(decision.tarpitMs);
  if (s.state === 'closed') return null;
  if (decision.refuse) {
    const p = decision.refuse;
    ctx.emit('imap.login.refused', {
      ip: facts.ip,
      conn_id: facts.id,
      data: { session: facts.id, user, method: a.method, policy: p.id, target_kind: p.target_kind, reason: p.reason },
    });
    await sleep(ctx.guard.failed(facts.ip));
    s.write(`${a.tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
    return null;
  }
  if (decision.protect) {
    const p = decision.protect;
    let admitted = true;
    try {
      admitted = await ctx.guard.admits(user, facts.ip);
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message, user, policy: p.id }, 'known login addresses unreadable; this login goes to the server as if the user were not protected');
    }
    if (closed(s)) return null;
    if (!admitted) {
      // An auth.failed like the server's, so that the detectors keep counting the attack (and keep the policy alive).
      facts.loginFailures++;
      emitLogin(ctx.emit, false, 'imap', facts, user, { method: a.method, refused_by: p.id, ...(decision.tarpitMs ? { tarpit_ms: decision.tarpitMs } : {}) });
      await sleep(ctx.guard.failed(facts.ip));
      s.write(`${a.tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
      return null;
    }
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
  const extra = { tarpit_ms: decision.tarpitMs || undefined };
  if (res.kind === 'ok') {
    facts.loggedInAt = Date.now();
    ctx.guard.succeeded(user, facts.ip);
    emitLogin(ctx.emit, true, 'imap', facts, user, { method: a.method, ...extra });
    return res;
  }
  // The server's own trouble (its response code says so) is not a wrong password and counts against nobody.
  if (/^\[(UNAVAILABLE|SERVERBUG|LIMIT|INUSE)\]/i.test(res.text)) {
    ctx.emit('imap.upstream_error', { ip: facts.ip, conn_id: facts.id, data: { session: facts.id, reason: 'server_refused', detail: res.text.slice(0, 200), user } });
    s.write(`${a.tag} NO ${res.text}\r\n`);
    return null;
  }
  facts.loginFailures++;
  emitLogin(ctx.emit, false, 'imap', facts, user, { method: a.method, ...extra });
  await sleep(ctx.guard.failed(facts.ip));
  s.write(`${a.tag} NO ${res.text.startsWith('[') ? res.text : `[AUTHENTICATIONFAILED] ${res.text}`}\r\n`);
  return null;
}
