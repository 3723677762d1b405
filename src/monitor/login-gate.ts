// The steps of a login attempt that are the same in every monitor protocol: the live policies before the server
// is asked (block → refused here, tarpit → held, protect → refused here unless the address is one the user logged
// in from before), and after the server's answer the login event and the progressive delay of a failure. Each
// protocol writes its own replies around these.
import type { Emit, EventType } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import { emitLogin, type LoginGuard } from './guard.ts';
import type { SessionFacts } from './session.ts';

export interface GateContext {
  guard: LoginGuard;
  emit: Emit;
  log: Logger;
}

export type Protocol = 'imap' | 'pop3' | 'submission';

export type GateResult =
  /** The client went away while the attempt waited. */
  | { kind: 'closed' }
  /** Postern refused the login itself, and already waited the failure delay: answer the protocol's failure. */
  | { kind: 'refused' }
  /** Ask the server. */
  | { kind: 'go'; tarpitMs: number };

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

/** What the live policies say before the server is asked; `closed` tells whether the client is gone meanwhile. */
export async function loginGate(ctx: GateContext, protocol: Protocol, facts: SessionFacts, user: string, method: string, closed: () => boolean): Promise<GateResult> {
  facts.user = user;
  facts.loginAttempts++;
  const decision = ctx.guard.atLogin(facts.ip, user);
  await sleep(decision.tarpitMs);
  if (closed()) return { kind: 'closed' };
  if (decision.refuse) {
    const p = decision.refuse;
    ctx.emit(`${protocol}.login.refused` satisfies EventType, {
      ip: facts.ip,
      conn_id: facts.id,
      data: { session: facts.id, user, method, policy: p.id, target_kind: p.target_kind, reason: p.reason },
    });
    await sleep(ctx.guard.failed(facts.ip));
    return closed() ? { kind: 'closed' } : { kind: 'refused' };
  }
  if (decision.protect) {
    const p = decision.protect;
    let admitted = true;
    try {
      admitted = await ctx.guard.admits(user, facts.ip);
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message, user, policy: p.id }, 'known login addresses unreadable; this login goes to the server as if the user were not protected');
    }
    if (closed()) return { kind: 'closed' };
    if (!admitted) {
      // An auth.failed like the server's, so that the detectors keep counting the attack (and keep the policy alive).
      facts.loginFailures++;
      emitLogin(ctx.emit, false, protocol, facts, user, { method, refused_by: p.id, ...(decision.tarpitMs ? { tarpit_ms: decision.tarpitMs } : {}) });
      await sleep(ctx.guard.failed(facts.ip));
      return closed() ? { kind: 'closed' } : { kind: 'refused' };
    }
  }
  return { kind: 'go', tarpitMs: decision.tarpitMs };
}

/** The server accepted the login: the event, and the address is known for the user from now on. */
export function loginSucceeded(ctx: GateContext, protocol: Protocol, facts: SessionFacts, user: string, method: string, tarpitMs: number): void {
  facts.loggedInAt = Date.now();
  ctx.guard.succeeded(user, facts.ip);
  emitLogin(ctx.emit, true, protocol, facts, user, { method, tarpit_ms: tarpitMs || undefined });
}

/** The server refused the credentials: the event, then the progressive delay before the client hears it. */
export async function loginFailed(ctx: GateContext, protocol: Protocol, facts: SessionFacts, user: string, method: string, tarpitMs: number): Promise<void> {
  facts.loginFailures++;
  emitLogin(ctx.emit, false, protocol, facts, user, { method, tarpit_ms: tarpitMs || undefined });
  await sleep(ctx.guard.failed(facts.ip));
}
