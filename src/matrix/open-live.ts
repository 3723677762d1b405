// Opens the live half of the matrix that config.matrix.live names: in this process, or shared through Redis.
import type { Config } from '../config/schema.ts';
import type { Live, LiveCounters, PolicyBus } from './live.ts';
import { MemoryBus, MemoryCounters } from './live-memory.ts';

/**
 * Opens the live counters and policy bus. With Redis it connects before resolving and rejects, naming the URL, when
 * Redis cannot be reached; later failures are reported through `onError` and counts fail open to 0. `onError` is
 * called at most once per 10 s.
 */
export async function openLive(config: Config, opts: { onError?: (err: Error) => void } = {}): Promise<Live> {
  const report = throttled(opts.onError);
  if (config.matrix.live === 'memory') return live(new MemoryCounters(), new MemoryBus(report));
  // Loaded only here: a single node never needs the Redis client, and it is tens of MB in every process.
  const { RedisBus, RedisCounters, connectRedis } = await import('./live-redis.ts');
  const { redis_url: url, redis_prefix: prefix } = config.matrix;
  const cmd = await connectRedis(url, report);
  let sub;
  try {
    sub = await connectRedis(url, report);
  } catch (err) {
    cmd.disconnect();
    throw err;
  }
  const counters = new RedisCounters(cmd, prefix, report);
  try {
    // The bus publishes on the counters' connection, so it closes first.
    return live(counters, await RedisBus.open(cmd, sub, `${prefix}policies`, report));
  } catch (err) {
    cmd.disconnect();
    sub.disconnect();
    throw new Error(`cannot subscribe to ${prefix}policies on Redis: ${(err as Error).message}`);
  }
}

function live(counters: LiveCounters, bus: PolicyBus): Live {
  let closing: Promise<void> | undefined;
  return {
    counters,
    bus,
    close: () => (closing ??= bus.close().then(() => counters.close())),
  };
}

/** Passes errors on at most once per `everyMs`: a Redis that is down fails every command and must not flood logs. */
export function throttled(onError: ((err: Error) => void) | undefined, everyMs = 10_000): (err: Error) => void {
  let last = -Infinity;
  return (err) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    onError?.(err);
  };
}
