// The DNS the auth check asks: node:dns on the configured servers (or the system's), every query under a timeout
// and a per-message deadline, answers kept in a bounded in-process cache. mailauth calls it as `resolver(name, type)`
// with the shapes of dns.promises.resolve.
import { promises as dnsp } from 'node:dns';

export interface ResolverOptions {
  servers: readonly string[];
  timeoutMs: number;
  /** Longest time an answer is kept; A/AAAA answers are kept no longer than their record TTL. */
  cacheTtlS: number;
  cacheEntries: number;
}

/** What mailauth passes and expects (its DNSResolver type). */
export type MailauthResolver = (name: string, rrtype: string) => Promise<never>;

type Answer = unknown[];
interface Entry {
  expires: number;
  value?: Answer;
  error?: NodeJS.ErrnoException;
}

/** Names and types whose lookup failed for a reason other than "does not exist", in one message. */
export interface RunState {
  tempFailed: Set<string>;
}

// "No such name" and "no such record" are answers: kept like records, but not for longer than this.
const NEGATIVE_TTL_S = 60;
// A failing server is not asked again for every message of a burst.
const TEMPFAIL_TTL_S = 5;

function dnsError(code: string, name: string): NodeJS.ErrnoException {
  const e = new Error(`${code} ${name}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

/** A name DNS cannot carry (too long, empty or oversized labels, spaces or control characters) does not exist. */
function validName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  if (/[\s\x00-\x1f\x7f()<>\\"',;@]/.test(name)) return false;
  return name.replace(/\.$/, '').split('.').every((l) => l.length > 0 && l.length <= 63);
}

export class CachingResolver {
  private readonly resolver: dnsp.Resolver;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Answer>>();

  constructor(private readonly opts: ResolverOptions) {
    this.resolver = new dnsp.Resolver({ timeout: opts.timeoutMs, tries: 1 });
    if (opts.servers.length) this.resolver.setServers([...opts.servers]);
  }

  /**
   * The function handed to mailauth for one message: stops asking once `deadline` (epoch ms) has passed or the signal
   * fires. The signal may be given as a function, called only when a query goes out: an answer from the cache needs
   * none, and making one costs more than the lookup.
   */
  forRun(deadline: number, signal: AbortSignal | (() => AbortSignal) | undefined, state: RunState): MailauthResolver {
    return (async (name: string, rrtype: string) => {
      const type = rrtype.toUpperCase();
      const key = `${name.toLowerCase()} ${type}`;
      try {
        return await this.lookup(key, name, type, deadline, signal);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTFOUND' && code !== 'ENODATA') state.tempFailed.add(key);
        throw err;
      }
    }) as MailauthResolver;
  }

  private async lookup(key: string, name: string, type: string, deadline: number, signalOrGet: AbortSignal | (() => AbortSignal) | undefined): Promise<Answer> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) {
      if (hit.error) throw hit.error;
      return hit.value as Answer;
    }
    if (!validName(name)) throw dnsError('ENOTFOUND', name);
    const left = Math.min(this.opts.timeoutMs, deadline - now);
    const signal = typeof signalOrGet === 'function' ? signalOrGet() : signalOrGet;
    if (left <= 0 || signal?.aborted) throw dnsError('ETIMEOUT', name);
    let q = this.inflight.get(key);
    if (!q) {
      q = this.query(name, type).then(
        ({ value, ttl }) => {
          this.store(key, { expires: Date.now() + ttl * 1000, value });
          return value;
        },
        (err: NodeJS.ErrnoException) => {
          const negative = err.code === 'ENOTFOUND' || err.code === 'ENODATA';
          this.store(key, { expires: Date.now() + (negative ? Math.min(NEGATIVE_TTL_S, this.opts.cacheTtlS) : TEMPFAIL_TTL_S) * 1000, error: err });
          throw err;
        },
      );
      q.catch(() => undefined).finally(() => this.inflight.delete(key));
      this.inflight.set(key, q);
    }
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        q,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(dnsError('ETIMEOUT', name)), left);
          onAbort = () => reject(dnsError('ETIMEOUT', name));
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private async query(name: string, type: string): Promise<{ value: Answer; ttl: number }> {
    const r = this.resolver;
    const cap = this.opts.cacheTtlS;
    switch (type) {
      case 'A':
      case 'AAAA': {
        const rows = type === 'A' ? await r.resolve4(name, { ttl: true }) : await r.resolve6(name, { ttl: true });
        const ttl = rows.length ? Math.min(cap, ...rows.map((x) => x.ttl)) : Math.min(cap, NEGATIVE_TTL_S);
        return { value: rows.map((x) => x.address), ttl };
      }
      // node:dns does not report the TTL of these; they are kept for cache_ttl_s.
      case 'TXT':
        return { value: await r.resolveTxt(name), ttl: cap };
      case 'MX':
        return { value: await r.resolveMx(name), ttl: cap };
      case 'PTR':
        return { value: await r.resolvePtr(name), ttl: cap };
      case 'CNAME':
        return { value: await r.resolveCname(name), ttl: cap };
      default:
        throw dnsError('ENOTIMP', name);
    }
  }

  private store(key: string, e: Entry): void {
    this.cache.delete(key);
    this.cache.set(key, e);
    // Oldest first: a Map iterates in insertion order.
    while (this.cache.size > this.opts.cacheEntries) {
      const first = this.cache.keys().next().value as string;
      this.cache.delete(first);
    }
  }

  get size(): number {
    return this.cache.size;
  }
}

const resolvers = new Map<string, CachingResolver>();

/** One resolver (and cache) per configuration, shared by every message that uses it. */
export function resolverFor(opts: ResolverOptions): CachingResolver {
  const key = JSON.stringify([opts.servers, opts.timeoutMs, opts.cacheTtlS, opts.cacheEntries]);
  let r = resolvers.get(key);
  if (!r) {
    // A reload with new options makes a new one; old ones are few and small, but not kept without bound.
    if (resolvers.size >= 8) resolvers.clear();
    r = new CachingResolver(opts);
    resolvers.set(key, r);
  }
  return r;
}
