// The live half on Redis (matrix.live = "redis"): counters and the policy bus shared by every gateway node.
// Counters sit in line at SMTP decision points, so Redis must never stall or stop mail: commands time out fast, are
// not queued while disconnected, and a failed count reads as 0 (fail open).
import { Redis } from 'ioredis';
import type { LiveCounters, PolicyBus, PolicyChange } from './live.ts';
import { bucketStart, deliver } from './live-memory.ts';

// One round trip per hit. Fields are bucket starts (ms); the same buckets as MemoryCounters so both agree.
// KEYS[1] hash; ARGV: bucket start, n, cutoff (now - window), window ms.
const HIT_LUA = `
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
local cutoff = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local sum, old = 0, {}
for i = 1, #all, 2 do
  if tonumber(all[i]) > cutoff then sum = sum + tonumber(all[i + 1]) else old[#old + 1] = all[i] end
end
if #old > 0 then redis.call('HDEL', KEYS[1], unpack(old)) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return sum`;

// KEYS[1] hash; ARGV: cutoff. Reads only: a count under a shorter window must not drop what the hit's window keeps.
const COUNT_LUA = `
local cutoff = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #all, 2 do
  if tonumber(all[i]) > cutoff then sum = sum + tonumber(all[i + 1]) end
end
return sum`;

type Scripted = Redis & {
  posternHit(key: string, start: number, n: number, cutoff: number, windowMs: number): Promise<number>;
  posternCount(key: string, cutoff: number): Promise<number>;
};

/** The URL with any password masked, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Opens one connection, ready for commands, or rejects naming the URL. Errors after that go to `report`; ioredis
 * reconnects on its own.
 */
export async function connectRedis(url: string, report: (err: Error) => void): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 500,
    connectTimeout: 2_000,
  });
  // Without a listener an 'error' event would be thrown and take the process down.
  client.on('error', (err: Error) => report(err));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new Error(`cannot reach Redis at ${safeUrl(url)} (matrix.redis_url): ${(err as Error).message}`);
  }
  return client;
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

export class RedisCounters implements LiveCounters {
  private readonly client: Scripted;
  private closed = false;

  /** Takes ownership of `client`: close() quits it. */
  constructor(
    client: Redis,
    private readonly prefix: string,
    private readonly report: (err: Error) => void,
  ) {
    client.defineCommand('posternHit', { numberOfKeys: 1, lua: HIT_LUA });
    client.defineCommand('posternCount', { numberOfKeys: 1, lua: COUNT_LUA });
    this.client = client as Scripted;
  }

  /** The Redis key that holds `key`'s buckets. */
  redisKey(key: string): string {
    return `${this.prefix}c:${key}`;
  }

  hit(key: string, windowMs: number, n = 1, now = Date.now()): Promise<number> {
    return this.failOpen(this.client.posternHit(this.redisKey(key), bucketStart(now, windowMs), n, now - windowMs, windowMs));
  }

  count(key: string, windowMs: number, now = Date.now()): Promise<number> {
    return this.failOpen(this.client.posternCount(this.redisKey(key), now - windowMs));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await quit(this.client);
  }

  private async failOpen(p: Promise<number>): Promise<number> {
    try {
      return Number(await p);
    } catch (err) {
      this.report(err as Error);
      return 0;
    }
  }
}

export class RedisBus implements PolicyBus {
  private readonly listeners = new Set<(change: PolicyChange) => void>();
  private closed = false;

  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly channel: string,
    private readonly report: (err: Error) => void,
  ) {
    sub.on('message', (ch: string, raw: string) => {
      if (ch !== channel) return;
      const change = parseChange(raw);
      if (!change) return this.report(new Error(`ignored a malformed policy change on ${channel}: ${raw.slice(0, 200)}`));
      for (const fn of this.listeners) deliver(fn, change, this.report);
    });
  }

  /**
   * Subscribes `sub` (a connection of its own: a subscribed connection takes no other commands) to `channel`.
   * Publishes go through `pub`, which stays the caller's to close; `sub` is the bus's.
   */
  static async open(pub: Redis, sub: Redis, channel: string, report: (err: Error) => void): Promise<RedisBus> {
    const bus = new RedisBus(pub, sub, channel, report);
    await sub.subscribe(channel);
    return bus;
  }

  /** Rejects when Redis could not take the change: the caller then knows the other nodes were not told. */
  async publish(change: PolicyChange): Promise<void> {
    await this.pub.publish(this.channel, JSON.stringify({ op: change.op, id: change.id }));
  }

  subscribe(fn: (change: PolicyChange) => void): () => void {
    const own = (c: PolicyChange) => fn(c);
    this.listeners.add(own);
    return () => void this.listeners.delete(own);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await quit(this.sub);
  }
}

function parseChange(raw: string): PolicyChange | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { op, id } = v as Record<string, unknown>;
  if ((op !== 'set' && op !== 'removed' && op !== 'similarity' && op !== 'audit' && op !== 'settings') || typeof id !== 'string' || !id) return undefined;
  return { op, id };
}
