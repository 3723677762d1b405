// Whether a mailbox user has logged in from an address before: what a protect policy asks at each login. The
// stored answer is table mailbox_logins, which the trend analyzer fills from auth.succeeded events
// (trends/known-logins.ts); this process also remembers the logins it saw itself, so that a login the analyzer has
// not written yet (it writes every half second) already counts.
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import { networkOf } from '../trends/detector.ts';

/** How long one user's stored addresses are used before they are read again. */
const CACHE_MS = 1_000;
/** Users whose addresses are cached, and (user, address) pairs remembered from this process's own logins. */
const MAX_USERS = 10_000;
const MAX_RECENT = 100_000;
/** Addresses read per user at most: the most recently used ones. */
const MAX_ADDRESSES = 1_000;

export interface KnownLoginsOptions {
  /** An address is known for this long after the user's last successful login from it. */
  retentionMs: number;
  /** Also admit the /24 (IPv4) or /64 (IPv6) of a known address. */
  sameNetwork: boolean;
}

interface Cached {
  at: number;
  ips: Set<string>;
  nets: Set<string>;
}

export class KnownLogins {
  private readonly cache = new Map<string, Cached>();
  private readonly loading = new Map<string, Promise<Cached>>();
  /**
   * `user\0ip` → time of the last successful login through this process; with sameNetwork also `user\0net\0cidr`
   * for its network, so that either is one lookup.
   */
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly db: Kysely<DB>,
    private readonly opts: KnownLoginsOptions,
  ) {}

  /** A login that just succeeded through this process. */
  remember(user: string, ip: string, now = Date.now()): void {
    const u = norm(user);
    const a = plain(ip);
    for (const key of this.opts.sameNetwork ? [`${u}\u0000${a}`, `${u}\u0000net\u0000${networkOf(a)}`] : [`${u}\u0000${a}`]) {
      this.recent.delete(key);
      this.recent.set(key, now);
      if (this.recent.size > MAX_RECENT) this.recent.delete(this.recent.keys().next().value as string);
    }
  }

  /** Whether `user` logged in successfully from `ip` (or its network, with sameNetwork) within the retention. Throws when the store cannot say. */
  async isKnown(user: string, ip: string, now = Date.now()): Promise<boolean> {
    const u = norm(user);
    const a = plain(ip);
    const since = now - this.opts.retentionMs;
    const net = this.opts.sameNetwork ? networkOf(a) : null;
    const recent = (key: string) => (this.recent.get(key) ?? -Infinity) >= since;
    if (recent(`${u}\u0000${a}`) || (net !== null && recent(`${u}\u0000net\u0000${net}`))) return true;
    const c = await this.addresses(u, since, now);
    return c.ips.has(a) || (net !== null && c.nets.has(net));
  }

  /** The user's stored addresses, read at most once per CACHE_MS however many logins ask at once. */
  private addresses(user: string, since: number, now: number): Promise<Cached> {
    const c = this.cache.get(user);
    if (c && now - c.at < CACHE_MS) return Promise.resolve(c);
    let p = this.loading.get(user);
    if (!p) {
      p = this.db
        .selectFrom('mailbox_logins')
        .select('ip')
        .where('user', '=', user)
        .where('last_ok', '>=', since)
        .orderBy('last_ok', 'desc')
        .limit(MAX_ADDRESSES)
        .execute()
        .then((rows) => {
          const ips = new Set(rows.map((r) => r.ip));
          const got: Cached = { at: now, ips, nets: this.opts.sameNetwork ? new Set([...ips].map(networkOf)) : new Set() };
          this.cache.set(user, got);
          if (this.cache.size > MAX_USERS) this.cache.delete(this.cache.keys().next().value as string);
          return got;
        })
        .finally(() => this.loading.delete(user));
      this.loading.set(user, p);
    }
    return p;
  }
}

const norm = (user: string): string => user.trim().toLowerCase();
const plain = (ip: string): string => ip.replace(/^::ffff:/i, '');
