// The in-process live half (matrix.live = "memory"): bounded sliding-window counters and a policy bus of listeners.
import type { LiveCounters, PolicyBus, PolicyChange } from './live.ts';

/** A window is split into this many buckets; a count is exact to one bucket's width. Redis uses the same split. */
export const BUCKETS = 30;

export const bucketWidth = (windowMs: number): number => Math.max(1, Math.ceil(windowMs / BUCKETS));

/** Start of the bucket that `now` falls in. */
export const bucketStart = (now: number, windowMs: number): number => {
  const w = bucketWidth(windowMs);
  return Math.floor(now / w) * w;
};

// A window of 30 buckets overlaps at most 31 bucket starts; more is history that no count can reach.
const MAX_BUCKETS = BUCKETS + 1;

interface Entry {
  windowMs: number;
  /** Bucket starts, ascending, and the sums that go with them. */
  starts: number[];
  sums: number[];
}

export interface MemoryCountersOptions {
  /** Keys kept at most; past it the least recently hit key goes. */
  maxKeys?: number;
  /** How often keys idle past their window are swept; 0 sweeps only on access. */
  sweepMs?: number;
}

export class MemoryCounters implements LiveCounters {
  // A Map iterates in insertion order, and hit() re-inserts its key, so the first key is the least recently hit.
  private readonly keys = new Map<string, Entry>();
  private readonly maxKeys: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: MemoryCountersOptions = {}) {
    this.maxKeys = opts.maxKeys ?? 200_000;
    const sweepMs = opts.sweepMs ?? 60_000;
    if (sweepMs > 0) {
      this.timer = setInterval(() => this.sweep(), sweepMs);
      this.timer.unref();
    }
  }

  get size(): number {
    return this.keys.size;
  }

  hit(key: string, windowMs: number, n = 1, now = Date.now()): Promise<number> {
    const start = bucketStart(now, windowMs);
    let e = this.keys.get(key);
    if (e) this.keys.delete(key);
    else e = { windowMs, starts: [], sums: [] };
    e.windowMs = windowMs;
    add(e, start, n);
    prune(e, now - windowMs);
    this.keys.set(key, e);
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
    return Promise.resolve(total(e, now - windowMs));
  }

  count(key: string, windowMs: number, now = Date.now()): Promise<number> {
    const e = this.keys.get(key);
    if (!e) return Promise.resolve(0);
    if (expired(e, now)) {
      this.keys.delete(key);
      return Promise.resolve(0);
    }
    return Promise.resolve(total(e, now - windowMs));
  }

  /** Drops every key whose newest bucket is older than its window, as of `now`. */
  sweep(now = Date.now()): void {
    for (const [key, e] of this.keys) if (expired(e, now)) this.keys.delete(key);
  }

  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.keys.clear();
    return Promise.resolve();
  }
}

function expired(e: Entry, now: number): boolean {
  const newest = e.starts[e.starts.length - 1];
  return newest === undefined || newest <= now - e.windowMs;
}

function add(e: Entry, start: number, n: number): void {
  // Time normally moves forward, so the bucket is the last one or a new last one; a clock stepped back lands earlier.
  let i = e.starts.length;
  while (i > 0 && e.starts[i - 1] > start) i--;
  if (i > 0 && e.starts[i - 1] === start) e.sums[i - 1] += n;
  else {
    e.starts.splice(i, 0, start);
    e.sums.splice(i, 0, n);
  }
  const extra = e.starts.length - MAX_BUCKETS;
  if (extra > 0) {
    e.starts.splice(0, extra);
    e.sums.splice(0, extra);
  }
}

/** Drops the buckets that start at or before `cutoff`: only hit() does, with the window the key is hit under. */
function prune(e: Entry, cutoff: number): void {
  let old = 0;
  while (old < e.starts.length && e.starts[old] <= cutoff) old++;
  if (old) {
    e.starts.splice(0, old);
    e.sums.splice(0, old);
  }
}

/** Sum of the buckets that start after `cutoff`. */
function total(e: Entry, cutoff: number): number {
  let sum = 0;
  for (let i = e.starts.length - 1; i >= 0 && e.starts[i] > cutoff; i--) sum += e.sums[i];
  return sum;
}

export class MemoryBus implements PolicyBus {
  private readonly listeners = new Set<(change: PolicyChange) => void>();

  constructor(private readonly onError?: (err: Error) => void) {}

  publish(change: PolicyChange): Promise<void> {
    const copy = { op: change.op, id: change.id };
    // Asynchronous, as a bus across nodes is, so no caller comes to rely on listeners having run when publish returns.
    for (const fn of this.listeners) queueMicrotask(() => this.listeners.has(fn) && deliver(fn, copy, this.onError));
    return Promise.resolve();
  }

  subscribe(fn: (change: PolicyChange) => void): () => void {
    // Wrapped so that subscribing the same function twice gives two independent subscriptions.
    const own = (c: PolicyChange) => fn(c);
    this.listeners.add(own);
    return () => void this.listeners.delete(own);
  }

  close(): Promise<void> {
    this.listeners.clear();
    return Promise.resolve();
  }
}

/** Calls one listener; a listener that throws is reported, never allowed to break the others or the process. */
export function deliver(fn: (change: PolicyChange) => void, change: PolicyChange, onError?: (err: Error) => void): void {
  try {
    fn(change);
  } catch (err) {
    onError?.(err instanceof Error ? err : new Error(String(err)));
  }
}
