// The password-attack defence every monitor protocol shares: live policies at connect and at login (a protect
// policy on a user admits only addresses it logged in from before), and the progressive delay of failed-login
// replies per client address.
import type { LivePolicy, PolicyTable } from '../policy/live.ts';
import type { KnownLogins } from './known-logins.ts';
import type { Emit } from '../core/events.ts';
import type { SessionFacts } from './session.ts';

/** The longest a tarpit holds a login reply: clients give up on longer waits (imapflow's default is 90 s of socket silence). */
const MAX_TARPIT_MS = 30_000;
/** Addresses remembered for the failure delay; beyond this the longest-quiet ones are forgotten first. */
const MAX_TRACKED = 100_000;

export interface GuardOptions {
  failureDelayMs: number;
  failureDelayMaxMs: number;
  failureWindowS: number;
}

export interface LoginDecision {
  /** A block policy: answer a failure without asking the server. */
  refuse?: LivePolicy;
  /** A protect policy on the user: ask admits() whether this address may log in. */
  protect?: LivePolicy;
  /** Hold the reply this long (tarpit policies on the address or user). */
  tarpitMs: number;
  policies: LivePolicy[];
}

export class LoginGuard {
  private readonly failures = new Map<string, { n: number; last: number }>();

  constructor(
    private readonly policies: PolicyTable,
    private readonly opts: GuardOptions,
    /** The addresses users logged in from; without it a protect policy cannot tell the owner and admits everyone. */
    private readonly known?: KnownLogins,
  ) {}

  /** An admin's allow policy on the address exempts it from blocks, tarpits and delays. */
  private allowed(ip: string): boolean {
    return this.policies.match({ ip }).some((p) => p.action === 'allow');
  }

  /** A block policy on the client's address, which refuses the connection before the greeting. */
  atConnect(ip: string): LivePolicy | undefined {
    const hits = this.policies.match({ ip });
    if (hits.some((p) => p.action === 'allow')) return undefined;
    return hits.find((p) => p.action === 'block');
  }

  /**
   * What the live policies say of a login attempt. A block on the address or the user refuses it; a tarpit on
   * either only slows it: the brute-force detector tarpits a user attacked from many addresses so that the owner,
   * from a known address, still gets in.
   */
  atLogin(ip: string, user: string): LoginDecision {
    if (this.allowed(ip)) return { tarpitMs: 0, policies: [] };
    const hits = [...this.policies.match({ ip }), ...this.policies.match({ user })];
    let tarpitMs = 0;
    for (const p of hits) if (p.action === 'tarpit') tarpitMs = Math.max(tarpitMs, Math.min(MAX_TARPIT_MS, Number(p.params.delay_ms ?? 5_000)));
    return { refuse: hits.find((p) => p.action === 'block'), protect: hits.find((p) => p.action === 'protect'), tarpitMs, policies: hits };
  }

  /**
   * Whether a protected user may log in from `ip`: only from an address it logged in from successfully before.
   * Throws when the store cannot say; the caller then lets the server decide, as without the policy, rather than
   * lock the owner out.
   */
  async admits(user: string, ip: string): Promise<boolean> {
    return this.known ? this.known.isKnown(user, ip) : true;
  }

  /** A login the server accepted: its address is known for the user from now on. */
  succeeded(user: string, ip: string): void {
    this.known?.remember(user, ip);
  }

  /**
   * Records a failed login from `ip` and returns how long to hold its reply: failure_delay_ms, doubling with each
   * further failure within failure_window_s, capped. Postern's own, because a server that trusts the proxy's
   * address (Dovecot's login_trusted_networks) skips its own penalty, and one that does not would penalise every
   * client behind the proxy alike. A success does not reset it: one working account must not buy an attacker
   * fresh guesses at others.
   */
  failed(ip: string, now = Date.now()): number {
    if (this.opts.failureDelayMs === 0 || this.allowed(ip)) return 0;
    const prev = this.failures.get(ip);
    const n = prev && now - prev.last < this.opts.failureWindowS * 1000 ? prev.n + 1 : 1;
    this.failures.delete(ip);
    this.failures.set(ip, { n, last: now });
    if (this.failures.size > MAX_TRACKED) this.failures.delete(this.failures.keys().next().value as string);
    return Math.min(this.opts.failureDelayMaxMs, this.opts.failureDelayMs * 2 ** Math.min(n - 1, 20));
  }
}

/** The login event of any protocol: user, protocol, session and TLS; never the password. */
export function emitLogin(emit: Emit, ok: boolean, protocol: string, s: SessionFacts, user: string, extra: Record<string, unknown> = {}): void {
  emit(ok ? 'auth.succeeded' : 'auth.failed', {
    ip: s.ip,
    conn_id: s.id,
    data: { user, protocol, session: s.id, tls: s.tls, ...extra },
  });
}
