// Failed sign-ins counted per client address and per account name in a sliding window: a guesser is stopped
// whether it tries many passwords on one name or one password on many names from one address. In memory, per
// process: a restart forgets, which costs an attacker a restart of ours per five guesses.

export interface LimitRule {
  /** Failures allowed in the window; the next attempt is refused until the oldest one leaves the window. */
  failures: number;
  windowMs: number;
}

/** Per name as OWASP suggests; per address higher, since a whole office can sit behind one NAT address. */
export const LOGIN_LIMITS: Record<'name' | 'ip', LimitRule> = {
  name: { failures: 5, windowMs: 5 * 60_000 },
  ip: { failures: 20, windowMs: 5 * 60_000 },
};

/** Keys remembered at most; beyond it the oldest go (a spray of names must not grow the map without end). */
const MAX_KEYS = 10_000;

export class LoginLimiter {
  private readonly failed = new Map<string, number[]>();

  constructor(
    private readonly rules: Record<'name' | 'ip', LimitRule> = LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  private key = (kind: 'name' | 'ip', v: string) => `${kind}:${kind === 'name' ? v.toLowerCase() : v}`;

  private recent(kind: 'name' | 'ip', v: string, now: number): number[] {
    const k = this.key(kind, v);
    const list = this.failed.get(k);
    if (!list) return [];
    const keep = list.filter((t) => t > now - this.rules[kind].windowMs);
    if (keep.length) this.failed.set(k, keep);
    else this.failed.delete(k);
    return keep;
  }

  /** Seconds until an attempt for this name from this address may be made; 0 when it may be made now. */
  retryAfter(name: string, ip: string): number {
    const now = this.now();
    let wait = 0;
    for (const [kind, v] of [['name', name], ['ip', ip]] as const) {
      const list = this.recent(kind, v, now);
      const rule = this.rules[kind];
      if (list.length >= rule.failures) wait = Math.max(wait, list[list.length - rule.failures] + rule.windowMs - now);
    }
    return Math.ceil(wait / 1000);
  }

  fail(name: string, ip: string): void {
    const now = this.now();
    for (const [kind, v] of [['name', name], ['ip', ip]] as const) {
      const list = this.recent(kind, v, now);
      list.push(now);
      // Only the last `failures` matter for the answer.
      this.failed.delete(this.key(kind, v));
      this.failed.set(this.key(kind, v), list.slice(-this.rules[kind].failures));
    }
    while (this.failed.size > MAX_KEYS) this.failed.delete(this.failed.keys().next().value!);
  }

  /** A right password clears the name's failures, not the address's: logging in to one's own account between
   * guesses must not reset the count for the others. */
  succeed(name: string): void {
    this.failed.delete(this.key('name', name));
  }
}
