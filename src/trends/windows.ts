// Sliding-window counts and distinct-member counts the analyzer's detectors keep in memory. One analyzer leads at a
// time, so its windows need not be shared; the gateway's in-line counters are matrix/live.ts.

const SLOTS = 30;

interface Series {
  /** Start of each slot, newest last, and its count. */
  starts: number[];
  counts: number[];
  windowMs: number;
  last: number;
}

/** Counts over sliding windows, one slot per 1/30 of the window; bounded by a key cap (least recently hit goes). */
export class Windows {
  private readonly series = new Map<string, Series>();
  private readonly sets = new Map<string, { members: Map<string, number>; windowMs: number; last: number }>();

  constructor(private readonly maxKeys = 500_000) {}

  /** Adds n to key at now; returns the total over the last windowMs. */
  add(key: string, windowMs: number, now: number, n = 1): number {
    const width = Math.ceil(windowMs / SLOTS);
    const start = now - (now % width);
    let s = this.series.get(key);
    if (!s) {
      this.bound(this.series);
      // Born with its one slot: most keys (one address, one network) are hit once or a few times, and arrays
      // grown from empty reserve room for 16 slots, which across hundreds of thousands of keys is what the
      // garbage collector spends its time on.
      s = { starts: [start], counts: [n], windowMs, last: now };
      this.series.set(key, s);
      return this.trim(s, now);
    }
    // Most recently hit last: Map keeps insertion order, so the first key is the one to evict.
    this.series.delete(key);
    this.series.set(key, s);
    const i = s.starts.length - 1;
    if (i >= 0 && s.starts[i] === start) s.counts[i] += n;
    else {
      s.starts.push(start);
      s.counts.push(n);
    }
    s.last = now;
    return this.trim(s, now);
  }

  total(key: string, windowMs: number, now: number): number {
    const s = this.series.get(key);
    return s ? this.trim(s, now, windowMs) : 0;
  }

  /** Records member under key at now; returns how many distinct members were seen within windowMs. */
  distinct(key: string, member: string, windowMs: number, now: number): number {
    let d = this.sets.get(key);
    if (!d) {
      this.bound(this.sets);
      d = { members: new Map(), windowMs, last: now };
      this.sets.set(key, d);
    }
    d.members.delete(member);
    d.members.set(member, now);
    d.last = now;
    for (const [m, t] of d.members) {
      if (t > now - windowMs) break;
      d.members.delete(m);
    }
    if (d.members.size > 10_000) d.members.delete(d.members.keys().next().value as string);
    return d.members.size;
  }

  /** Members of a distinct set, newest last (for evidence). */
  members(key: string, limit = 20): string[] {
    const d = this.sets.get(key);
    return d ? [...d.members.keys()].slice(-limit) : [];
  }

  /** Drops every key idle longer than its window. */
  sweep(now: number): void {
    for (const [k, s] of this.series) if (s.last <= now - s.windowMs) this.series.delete(k);
    for (const [k, d] of this.sets) if (d.last <= now - d.windowMs) this.sets.delete(k);
  }

  get size(): number {
    return this.series.size + this.sets.size;
  }

  private trim(s: Series, now: number, windowMs = s.windowMs): number {
    let drop = 0;
    while (drop < s.starts.length && s.starts[drop] <= now - s.windowMs) drop++;
    if (drop) {
      s.starts.splice(0, drop);
      s.counts.splice(0, drop);
    }
    let sum = 0;
    for (let i = s.starts.length - 1; i >= 0 && s.starts[i] > now - windowMs; i--) sum += s.counts[i];
    return sum;
  }

  private bound(m: Map<string, unknown>): void {
    if (m.size >= this.maxKeys) m.delete(m.keys().next().value as string);
  }
}
