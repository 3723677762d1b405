// The live half's contract, run on both backends (memory always, Redis when it listens), plus what each adds.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfigText } from '../config/load.ts';
import type { Live, PolicyChange } from './live.ts';
import { MemoryCounters } from './live-memory.ts';
import { throttled } from './open-live.ts';
import { openLive } from './open-live.ts';
import { missing } from '../../test/harness/services.ts';
import { until } from '../../test/harness/postern.ts';

const REDIS = 'redis://127.0.0.1:6379';
const PREFIX = `postern-test-${randomBytes(6).toString('hex')}:`;
// Aligned to every bucket width used below, so bucket edges are easy to name.
const T0 = 1_800_000_000_000;
const MIN = 60_000;

const redisConfig = (url = REDIS, prefix = PREFIX) =>
  parseConfigText(`[matrix]\nlive = "redis"\nredis_url = "${url}"\nredis_prefix = "${prefix}"\n`);

const backends: [string, string | undefined, () => Promise<Live>][] = [
  ['memory', undefined, () => openLive(parseConfigText(''))],
  ['redis', await missing('redis'), () => openLive(redisConfig())],
];

let keyNo = 0;
const freshKey = () => `k${keyNo++}:${randomBytes(4).toString('hex')}`;

for (const [name, skip, open] of backends) {
  describe.skipIf(skip)(`live counters and bus contract (${name})`, () => {
    let live: Live;
    beforeEach(async () => {
      live = await open();
    });
    afterEach(async () => {
      await live.close();
    });

    it('hit returns the running total, count reads it without adding', async () => {
      const k = freshKey();
      expect(await live.counters.hit(k, MIN, 1, T0)).toBe(1);
      expect(await live.counters.hit(k, MIN, 1, T0 + 10)).toBe(2);
      expect(await live.counters.hit(k, MIN, 1, T0 + 20)).toBe(3);
      expect(await live.counters.count(k, MIN, T0 + 30)).toBe(3);
      expect(await live.counters.count(k, MIN, T0 + 40)).toBe(3);
    });

    it('adds n at once', async () => {
      const k = freshKey();
      expect(await live.counters.hit(k, MIN, 5, T0)).toBe(5);
      expect(await live.counters.hit(k, MIN, 2, T0 + 1)).toBe(7);
      expect(await live.counters.count(k, MIN, T0 + 2)).toBe(7);
    });

    it('counts a key never hit as 0', async () => {
      expect(await live.counters.count(freshKey(), MIN, T0)).toBe(0);
    });

    it('keeps keys apart', async () => {
      const [a, b] = [freshKey(), freshKey()];
      await live.counters.hit(a, MIN, 3, T0);
      expect(await live.counters.hit(b, MIN, 1, T0)).toBe(1);
      expect(await live.counters.count(a, MIN, T0)).toBe(3);
      expect(await live.counters.count(b, MIN, T0)).toBe(1);
    });

    it('slides: hits leave the window as time moves on', async () => {
      const k = freshKey();
      await live.counters.hit(k, MIN, 1, T0);
      expect(await live.counters.hit(k, MIN, 1, T0 + 30_000)).toBe(2);
      expect(await live.counters.count(k, MIN, T0 + 59_999)).toBe(2);
      expect(await live.counters.count(k, MIN, T0 + MIN)).toBe(1);
      expect(await live.counters.hit(k, MIN, 1, T0 + 80_000)).toBe(2);
      expect(await live.counters.count(k, MIN, T0 + 30_000 + MIN)).toBe(1);
      expect(await live.counters.count(k, MIN, T0 + 80_000 + MIN)).toBe(0);
    });

    it('is precise to one bucket (window / 30)', async () => {
      const k = freshKey();
      // Window 30 s: buckets of 1 s. A hit late in the bucket [T0, T0+1000) leaves with its bucket, at T0 + 30 s.
      await live.counters.hit(k, 30_000, 1, T0 + 999);
      expect(await live.counters.count(k, 30_000, T0 + 29_999)).toBe(1);
      expect(await live.counters.count(k, 30_000, T0 + 30_000)).toBe(0);
      expect(await live.counters.hit(k, 30_000, 1, T0 + 30_000)).toBe(1);
      // A window that 30 does not divide: 1000 ms gives buckets of 34 ms, starting at multiples of 34.
      const j = freshKey();
      const b = Math.floor(T0 / 34) * 34;
      await live.counters.hit(j, 1000, 1, b + 33);
      expect(await live.counters.count(j, 1000, b + 999)).toBe(1);
      expect(await live.counters.count(j, 1000, b + 1000)).toBe(0);
      expect(await live.counters.hit(j, 1000, 1, b + 1000)).toBe(1);
    });

    it('a count under a shorter window does not lose what the longer one keeps', async () => {
      const k = freshKey();
      await live.counters.hit(k, 10 * MIN, 1, T0);
      expect(await live.counters.count(k, MIN, T0 + 2 * MIN)).toBe(0);
      expect(await live.counters.hit(k, 10 * MIN, 1, T0 + 2 * MIN)).toBe(2);
    });

    it('delivers a change to every subscriber, and no more after unsubscribe', async () => {
      const a: PolicyChange[] = [];
      const b: PolicyChange[] = [];
      const offA = live.bus.subscribe((c) => a.push(c));
      live.bus.subscribe((c) => b.push(c));
      await live.bus.publish({ op: 'set', id: 'p1' });
      await until(() => a.length === 1 && b.length === 1, 5000, 'both subscribers');
      expect(a).toEqual([{ op: 'set', id: 'p1' }]);
      expect(b).toEqual([{ op: 'set', id: 'p1' }]);
      offA();
      await live.bus.publish({ op: 'removed', id: 'p1' });
      await until(() => b.length === 2, 5000, 'the second change');
      expect(b[1]).toEqual({ op: 'removed', id: 'p1' });
      expect(a).toHaveLength(1);
    });

    it('a subscriber that throws does not keep the change from the others', async () => {
      const got: PolicyChange[] = [];
      live.bus.subscribe(() => {
        throw new Error('listener bug');
      });
      live.bus.subscribe((c) => got.push(c));
      await live.bus.publish({ op: 'set', id: 'p2' });
      await until(() => got.length === 1, 5000, 'delivery past a throwing listener');
    });

    it('publish does not call subscribers before it returns', async () => {
      let called = false;
      live.bus.subscribe(() => (called = true));
      const p = live.bus.publish({ op: 'set', id: 'p3' });
      expect(called).toBe(false);
      await p;
      await until(() => called, 5000, 'delivery');
    });

    it('close twice is harmless', async () => {
      await live.close();
      await live.close();
    });
  });
}

describe('memory counters', () => {
  it('keep at most maxKeys keys, dropping the least recently hit', async () => {
    const c = new MemoryCounters({ maxKeys: 3, sweepMs: 0 });
    for (const k of ['a', 'b', 'c']) await c.hit(k, MIN, 1, T0);
    await c.hit('a', MIN, 1, T0 + 1);
    await c.hit('d', MIN, 1, T0 + 2);
    expect(c.size).toBe(3);
    expect(await c.count('b', MIN, T0 + 3)).toBe(0);
    expect(await c.count('a', MIN, T0 + 3)).toBe(2);
    expect(await c.count('c', MIN, T0 + 3)).toBe(1);
    await c.close();
  });

  it('hold 200,000 keys by default', async () => {
    const c = new MemoryCounters({ sweepMs: 0 });
    for (let i = 0; i <= 200_000; i++) await c.hit(`ip${i}`, MIN, 1, T0);
    expect(c.size).toBe(200_000);
    expect(await c.count('ip0', MIN, T0)).toBe(0);
    expect(await c.count('ip200000', MIN, T0)).toBe(1);
    await c.close();
  });

  it('drop keys idle past their window, on access and on sweep', async () => {
    const c = new MemoryCounters({ sweepMs: 0 });
    await c.hit('short', 1000, 1, T0);
    await c.hit('long', 10 * MIN, 1, T0);
    await c.hit('gone', 1000, 1, T0);
    expect(await c.count('gone', 1000, T0 + 1000)).toBe(0);
    expect(c.size).toBe(2);
    c.sweep(T0 + 5000);
    expect(c.size).toBe(1);
    expect(await c.count('long', 10 * MIN, T0 + 5000)).toBe(1);
    await c.close();
  });

  it('a key hit in every bucket for three windows counts only the last window', async () => {
    const c = new MemoryCounters({ sweepMs: 0 });
    let last = 0;
    for (let t = 0; t < 3 * MIN; t += 2000) last = await c.hit('k', MIN, 1, T0 + t);
    expect(last).toBe(30);
    await c.close();
  });
});

describe('error throttle', () => {
  afterEach(() => vi.useRealTimers());
  it('passes on at most one error per 10 s', () => {
    vi.useFakeTimers({ now: T0 });
    const seen: string[] = [];
    const report = throttled((e) => seen.push(e.message));
    report(new Error('one'));
    report(new Error('two'));
    vi.setSystemTime(T0 + 9_999);
    report(new Error('three'));
    vi.setSystemTime(T0 + 10_000);
    report(new Error('four'));
    expect(seen).toEqual(['one', 'four']);
  });
});

describe.skipIf(await missing('redis'))('live on Redis', () => {
  const raw = new Redis(REDIS, { lazyConnect: true });
  const opened: Live[] = [];
  const open = async (url = REDIS, onError?: (err: Error) => void) => {
    const l = await openLive(redisConfig(url), { onError });
    opened.push(l);
    return l;
  };
  beforeAll(() => raw.connect());
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((l) => l.close()));
  });
  afterAll(async () => {
    const keys = await raw.keys(`${PREFIX}*`);
    if (keys.length) await raw.del(...keys);
    await raw.quit();
  });

  it('two nodes see the hits of one another', async () => {
    const [a, b] = [await open(), await open()];
    const k = freshKey();
    expect(await a.counters.hit(k, MIN, 2, T0)).toBe(2);
    expect(await b.counters.hit(k, MIN, 1, T0 + 1)).toBe(3);
    expect(await a.counters.count(k, MIN, T0 + 2)).toBe(3);
  });

  it('two nodes hear the changes of both, each once, their own included', async () => {
    const [a, b] = [await open(), await open()];
    const gotA: PolicyChange[] = [];
    const gotB: PolicyChange[] = [];
    a.bus.subscribe((c) => gotA.push(c));
    b.bus.subscribe((c) => gotB.push(c));
    await a.bus.publish({ op: 'set', id: 'x' });
    await b.bus.publish({ op: 'removed', id: 'x' });
    await until(() => gotA.length >= 2 && gotB.length >= 2, 5000, 'both changes on both nodes');
    // A third change as a fence: once it arrives, any duplicate of the first two would have arrived before it.
    await a.bus.publish({ op: 'set', id: 'fence' });
    await until(() => gotA.some((c) => c.id === 'fence') && gotB.some((c) => c.id === 'fence'), 5000, 'the fence');
    const want = [{ op: 'set', id: 'x' }, { op: 'removed', id: 'x' }, { op: 'set', id: 'fence' }];
    expect(gotA).toEqual(want);
    expect(gotB).toEqual(want);
  });

  it('carries every kind of change between nodes: policies, similarity rows, audited users, detector settings', async () => {
    const [a, b] = [await open(), await open()];
    const got: PolicyChange[] = [];
    b.bus.subscribe((c) => got.push(c));
    const sent: PolicyChange[] = [
      { op: 'set', id: 'p' },
      { op: 'removed', id: 'p' },
      { op: 'similarity', id: '3' },
      { op: 'audit', id: 'ann@example.com' },
      { op: 'settings', id: 'harvest' },
    ];
    for (const c of sent) await a.bus.publish(c);
    await until(() => got.length >= sent.length, 5000, 'every change on the other node');
    expect(got).toEqual(sent);
  });

  it('keys carry the prefix and expire with their window', async () => {
    const l = await open();
    const k = freshKey();
    await l.counters.hit(k, MIN, 1);
    const pttl = await raw.pttl(`${PREFIX}c:${k}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(MIN);
  });

  it('ignores and reports a malformed change on the channel', async () => {
    const errors: Error[] = [];
    const l = await open(REDIS, (e) => errors.push(e));
    const got: PolicyChange[] = [];
    l.bus.subscribe((c) => got.push(c));
    await raw.publish(`${PREFIX}policies`, 'not json {');
    await raw.publish(`${PREFIX}policies`, JSON.stringify({ op: 'drop', id: 7 }));
    await l.bus.publish({ op: 'set', id: 'ok' });
    await until(() => got.length === 1, 5000, 'the good change');
    expect(got).toEqual([{ op: 'set', id: 'ok' }]);
    expect(errors[0]?.message).toMatch(/malformed policy change/);
  });

  it('refuses to start when Redis cannot be reached, naming the URL', async () => {
    await expect(open('redis://127.0.0.1:1')).rejects.toThrow(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  });

  it('fails open to 0 while Redis is away, reports it, and reconnects on its own', async () => {
    // A loopback proxy in front of Redis that the test can cut and bring back.
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((s) => {
      const up = net.connect(6379, '127.0.0.1');
      for (const x of [s, up]) {
        sockets.add(x);
        x.on('error', () => undefined);
        x.on('close', () => sockets.delete(x));
      }
      s.pipe(up).pipe(s);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    const errors: Error[] = [];
    const l = await open(`redis://127.0.0.1:${port}`, (e) => errors.push(e));
    const k = freshKey();
    expect(await l.counters.hit(k, MIN, 4, T0)).toBe(4);

    await new Promise<void>((r) => {
      proxy.close(() => r());
      for (const s of sockets) s.destroy();
    });
    await until(async () => (await l.counters.hit(k, MIN, 1, T0)) === 0 && errors.length > 0, 5000, 'failing open');
    expect(await l.counters.count(k, MIN, T0)).toBe(0);
    await expect(l.bus.publish({ op: 'set', id: 'lost' })).rejects.toThrow();

    await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
    const back = await until(async () => l.counters.count(k, MIN, T0), 20_000, 'the reconnect');
    expect(back).toBeGreaterThanOrEqual(4);
    // The subscriber connection comes back subscribed.
    const got: PolicyChange[] = [];
    l.bus.subscribe((c) => got.push(c));
    await until(
      async () => {
        await l.bus.publish({ op: 'set', id: 'again' }).catch(() => undefined);
        return got.length > 0;
      },
      20_000,
      'changes after the reconnect',
    );
    expect(got[0]).toEqual({ op: 'set', id: 'again' });
    await l.close();
    await new Promise<void>((r) => {
      proxy.close(() => r());
      for (const s of sockets) s.destroy();
    });
  });
});
