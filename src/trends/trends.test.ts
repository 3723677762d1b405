// The detectors and the analyzer over a real store: each detector's finding and its evidence, the thresholds that
// must not fire, allow-lists, trusted networks, and a restart that neither loses windows nor counts twice.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { configSchema, type Config } from '../config/schema.ts';
import { silentLogger } from '../core/log.ts';
import type { EventType } from '../core/events.ts';
import { openStore, type StoreDb } from '../store/db.ts';
import { EventSink } from '../matrix/sink.ts';
import { addPolicy, listPolicies } from '../policy/admin.ts';
import { PolicyTable } from '../policy/live.ts';
import { Analyzer } from './analyzer.ts';
import { floodDetector } from './detectors/flood.ts';
import { Windows } from './windows.ts';
import { networkOf } from './detector.ts';
import { main } from '../main.ts';

let dir: string;
let store: StoreDb;
let sink: EventSink;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-trends-'));
  store = await openStore({ url: '', dataDir: dir });
  sink = new EventSink(store, silentLogger);
});
afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const config = (over: Record<string, unknown> = {}): Config => configSchema.parse({ trends: over, gateway: { trusted_networks: ['10.9.0.0/16'] } });

/** Stores events as the gateway would emit them, at the given times. */
async function put(...events: { type: EventType; ts?: number; ip?: string; data?: Record<string, unknown>; msg_id?: string; conn_id?: string }[]) {
  for (const e of events) sink.push({ type: e.type, ts: e.ts ?? Date.now(), ip: e.ip ?? null, conn_id: e.conn_id ?? null, msg_id: e.msg_id ?? null, data: e.data ?? {} });
  await sink.flush();
}

const analyzer = (c = config()) => new Analyzer({ db: store.db, dialect: 'sqlite', config: c, log: silentLogger });
const unknownRcpt = (ip: string, i: number, ts?: number) => ({ type: 'smtp.rcpt.rejected' as const, ip, ts, data: { rcpt: `guess${i}@example.org`, from: 'x@spam.example', reason: 'unknown_recipient' } });
const accepted = (ip: string, from: string, actions: string[], score = 0, ts?: number) => ({
  type: 'message.accepted' as const,
  ip,
  ts,
  msg_id: `M${Math.random()}`,
  data: { from, score, recipients: actions.map((a, i) => ({ rcpt: `user${i}@example.org`, action: a })) },
});

describe('harvest', () => {
  it('fires at ip_unknown with the evidence, once, and not for a sender with a few stale addresses among many good ones', async () => {
    const a = analyzer();
    await put(...Array.from({ length: 14 }, (_, i) => unknownRcpt('198.51.100.7', i)));
    await a.drain();
    expect(await listPolicies(store.db)).toEqual([]);
    await put(unknownRcpt('198.51.100.7', 99), ...Array.from({ length: 5 }, (_, i) => unknownRcpt('198.51.100.7', 100 + i)));
    await a.drain();
    const ps = await listPolicies(store.db);
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ target_kind: 'ip', target: '198.51.100.7', action: 'block', source: 'analyzer:harvest' });
    expect(ps[0].evidence).toMatchObject({ unknown: 15, accepted: 0, threshold: 15, window_s: 3600 });

    // 200 good recipients and 20 unknown ones: a mailing list with stale addresses, not a harvest.
    await put(...Array.from({ length: 200 }, () => ({ type: 'smtp.rcpt.accepted' as const, ip: '203.0.113.5', data: { rcpt: 'a@example.org', from: 'list@lists.example' } })));
    await put(...Array.from({ length: 20 }, (_, i) => unknownRcpt('203.0.113.5', i)));
    await a.drain();
    expect((await listPolicies(store.db)).map((p) => p.target)).not.toContain('203.0.113.5');
  });

  it('catches the slow form over slow_window_s, and never acts on trusted networks', async () => {
    const a = analyzer();
    const t0 = Date.now() - 20 * 3600_000;
    // 40 guesses over 20 hours: 2 an hour, never 15 in one hour.
    await put(...Array.from({ length: 40 }, (_, i) => unknownRcpt('192.0.2.44', i, t0 + i * 1800_000)));
    await put(...Array.from({ length: 50 }, (_, i) => unknownRcpt('10.9.1.1', i)));
    await a.drain();
    const ps = await listPolicies(store.db);
    expect(ps.map((p) => p.target)).toEqual(['192.0.2.44']);
    expect(ps[0].reason).toMatch(/^slow directory harvest/);
    expect(ps[0].evidence).toMatchObject({ window_s: 86400, unknown: 40 });
  });

  it('finds the network of a distributed harvest, and leaves an allow-listed network alone', async () => {
    await addPolicy(store.db, { target_kind: 'cidr', target: '198.18.7.0/24', action: 'allow', reason: 'partner' });
    const a = analyzer();
    await put(...Array.from({ length: 40 }, (_, i) => unknownRcpt(`198.51.100.${10 + Math.floor(i / 2)}`, i)));
    await put(...Array.from({ length: 40 }, (_, i) => unknownRcpt(`198.18.7.${10 + Math.floor(i / 2)}`, i)));
    await a.drain();
    const ps = await listPolicies(store.db);
    expect(ps.filter((p) => p.action === 'block').map((p) => p.target)).toEqual(['198.51.100.0/24']);
    expect(ps.find((p) => p.target === '198.51.100.0/24')!.evidence).toMatchObject({ unknown: 30, addresses: 15 });
  });
});

describe('reputation, backscatter, brute force', () => {
  it('blocks a source whose recent messages were mostly held or refused, not one with a few', async () => {
    const a = analyzer();
    await put(...Array.from({ length: 8 }, () => accepted('198.51.100.20', 'a@bad.example', ['quarantine'], 9)));
    await put({ type: 'smtp.data.rejected', ip: '198.51.100.20', data: { from: 'a@bad.example', reply: '554 5.7.1', reason: 'content' } });
    await put(accepted('198.51.100.20', 'a@bad.example', ['accept']));
    // Ten messages, nine bad: 0.9 ≥ 0.8.
    await put(...Array.from({ length: 8 }, () => accepted('198.51.100.21', 'b@ok.example', ['accept'], 1)));
    await put(...Array.from({ length: 2 }, () => accepted('198.51.100.21', 'b@ok.example', ['quarantine'], 9)));
    await a.drain();
    const ps = await listPolicies(store.db);
    expect(ps.map((p) => p.target)).toEqual(['198.51.100.20']);
    expect(ps[0].evidence).toMatchObject({ messages: 10, bad: 9, ratio: 0.9 });
  });

  it('holds bounces to a recipient under a backscatter storm, and only bounces', async () => {
    const a = analyzer();
    await put(...Array.from({ length: 30 }, (_, i) => ({ ...accepted(`203.0.113.${i}`, '', ['accept']), data: { from: '', recipients: [{ rcpt: 'ceo@example.org', action: 'accept' }] } })));
    await a.drain();
    const [p] = await listPolicies(store.db);
    expect(p).toMatchObject({ target_kind: 'recipient', target: 'ceo@example.org', action: 'quarantine', params: { null_sender: true } });
    const table = new PolicyTable(store.db);
    await table.load();
    expect(table.match({ recipient: 'ceo@example.org', sender: '' })).toHaveLength(1);
    expect(table.match({ recipient: 'ceo@example.org', sender: 'partner@example.net' })).toHaveLength(0);
  });

  it('tells brute force, spraying and a distributed attack on one user apart', async () => {
    const a = analyzer();
    const fail = (ip: string, user: string) => ({ type: 'auth.failed' as const, ip, data: { user, protocol: 'imap' } });
    await put(...Array.from({ length: 10 }, () => fail('198.51.100.30', 'alice')));
    await put(...['u1', 'u2', 'u3', 'u4', 'u5'].map((u) => fail('198.51.100.31', u)));
    await put(...Array.from({ length: 5 }, (_, i) => fail(`192.0.2.${100 + i}`, 'bob')));
    await a.drain();
    const ps = await listPolicies(store.db);
    const by = Object.fromEntries(ps.map((p) => [p.target, p]));
    expect(by['198.51.100.30']).toMatchObject({ action: 'block', reason: expect.stringMatching(/^brute force/) });
    expect(by['198.51.100.31']).toMatchObject({ action: 'block', reason: expect.stringMatching(/^password spraying/) });
    expect(by.bob).toMatchObject({ target_kind: 'user', action: 'protect' });
    expect(by.bob.evidence).toMatchObject({ addresses: 5, failures: 5 });
    expect(ps).toHaveLength(3);
  });
});

describe('flood', () => {
  it('fires against a source far above its own baseline, not against a steady big sender', () => {
    const d = floodDetector();
    const c = config({ flood: { window_s: 60, min_messages: 100, factor: 10 } });
    const ctx = { windows: new Windows(), config: c, trusted: () => false };
    const t0 = Date.UTC(2026, 0, 1);
    const fired = (ip: string, perWindow: number[]) => {
      let n = 0;
      perWindow.forEach((count, w) => {
        for (let i = 0; i < count; i++) n += d.observe({ id: 1, ts: t0 + w * 60_000 + i, type: 'message.accepted', ip, conn_id: null, msg_id: null, data: { from: `x@${ip}.example` } }, ctx)?.length ?? 0;
      });
      return n;
    };
    // A steady 80 a minute for an hour, then 300: within ten times its baseline (about 69 by then).
    expect(fired('198.51.100.1', [...Array(60).fill(80), 300])).toBe(0);
    // 20 in one window and 110 in the next: a young source is judged by min_messages, and a flood that
    // straddles a window boundary does not become its own baseline.
    expect(fired('198.51.100.5', [20, 110])).toBe(2 * 11);
    // 2 a minute, then 120: past min_messages and sixty times its baseline.
    expect(fired('198.51.100.2', [...Array(60).fill(2), 120])).toBe(2 * 21);
    // A new source is judged by min_messages alone.
    expect(fired('198.51.100.3', [99])).toBe(0);
    expect(fired('198.51.100.4', [100])).toBe(2);
  });
});

describe('analyzer restart', () => {
  it('rebuilds its windows from history without counting anything twice', async () => {
    const a = analyzer();
    await put(...Array.from({ length: 10 }, (_, i) => unknownRcpt('198.51.100.50', i)));
    await a.drain();
    const before = await store.db.selectFrom('source_stats').selectAll().where('kind', '=', 'ip').where('key', '=', '198.51.100.50').executeTakeFirstOrThrow();
    expect(Number(before.unknown_recipients)).toBe(10);
    // A new analyzer (a restart) replays the ten into its windows; five more make fifteen.
    const b = analyzer();
    await b.start(60_000);
    await put(...Array.from({ length: 5 }, (_, i) => unknownRcpt('198.51.100.50', 10 + i)));
    await b.drain();
    await b.stop();
    const after = await store.db.selectFrom('source_stats').selectAll().where('kind', '=', 'ip').where('key', '=', '198.51.100.50').executeTakeFirstOrThrow();
    expect(Number(after.unknown_recipients)).toBe(15);
    const net = await store.db.selectFrom('source_stats').selectAll().where('kind', '=', 'net').where('key', '=', networkOf('198.51.100.50')).executeTakeFirstOrThrow();
    expect(Number(net.unknown_recipients)).toBe(15);
    expect((await listPolicies(store.db)).map((p) => p.evidence.unknown)).toEqual([15]);
  });
});

describe('a store that fails a write', () => {
  it('keeps what it could not write and never counts an event twice', async () => {
    const a = analyzer();
    await put(...Array.from({ length: 10 }, (_, i) => unknownRcpt('198.51.100.60', i)));
    await store.db.schema.alterTable('source_stats').renameTo('source_stats_away').execute();
    await expect(a.drain()).rejects.toThrow(/source_stats/);
    await store.db.schema.alterTable('source_stats_away').renameTo('source_stats').execute();
    await put(...Array.from({ length: 5 }, (_, i) => unknownRcpt('198.51.100.60', 10 + i)));
    await a.drain();
    const row = await store.db.selectFrom('source_stats').selectAll().where('kind', '=', 'ip').where('key', '=', '198.51.100.60').executeTakeFirstOrThrow();
    expect(Number(row.unknown_recipients)).toBe(15);
    expect((await listPolicies(store.db)).map((p) => p.evidence.unknown)).toEqual([15]);
    const state = await store.db.selectFrom('analyzer_state').selectAll().executeTakeFirstOrThrow();
    expect(Number(state.last_event_id)).toBe(a.stats.cursor);
  });

  it('drops a finding that cannot be a policy instead of failing every step', async () => {
    // A detector (a plug-in, say) that reports a target no policy can have.
    const odd = {
      name: 'odd',
      types: ['smtp.connect'],
      horizonMs: () => 0,
      observe: () => [{ detector: 'odd', policy: { target_kind: 'ip' as const, target: 'not-an-address', action: 'block' as const, reason: 'odd' } }],
    };
    const a = new Analyzer({ db: store.db, dialect: 'sqlite', config: config(), log: silentLogger, extra: [odd] });
    await put({ type: 'smtp.connect', ip: '198.51.100.61' }, ...Array.from({ length: 15 }, (_, i) => unknownRcpt('198.51.100.61', i)));
    await a.drain();
    expect((await listPolicies(store.db)).map((p) => p.target)).toEqual(['198.51.100.61']);
    // A sender "x@" has no domain: a flood of it is counted against the address only.
    const b = analyzer(config({ flood: { min_messages: 3, factor: 2 } }));
    await put(...Array.from({ length: 4 }, () => accepted('198.51.100.62', 'x@', ['accept'])));
    await b.drain();
    expect((await listPolicies(store.db)).map((p) => p.target).sort()).toEqual(['198.51.100.61', '198.51.100.62']);
  });
});

describe('postern trends status', () => {
  it('says how far behind the analyzer is and what it found', async () => {
    const a = new Analyzer({ db: store.db, dialect: 'sqlite', config: config(), log: silentLogger, emit: sink.emit });
    await put(...Array.from({ length: 15 }, (_, i) => unknownRcpt('198.51.100.70', i)));
    await a.drain();
    await sink.flush();
    await put(unknownRcpt('198.51.100.71', 1));
    const file = path.join(dir, 'postern.toml');
    fs.writeFileSync(file, `data_dir = ${JSON.stringify(dir)}\n`);
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...x: unknown[]) => void lines.push(x.join(' ')));
    try {
      expect(await main(['trends', 'status', '--json', '--config', file])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const out = JSON.parse(lines.join('\n'));
    expect(out).toMatchObject({ enabled: true, cursor: a.stats.cursor, events_unread: 2, active_policies: { 'analyzer:harvest': 1 } });
    expect(out.recent_findings[0]).toMatchObject({ detector: 'harvest', target: '198.51.100.70', created: true });
  });
});

describe('networkOf', () => {
  it('gives the /24 of IPv4 and the /64 of IPv6', () => {
    expect(networkOf('192.0.2.77')).toBe('192.0.2.0/24');
    expect(networkOf('::ffff:192.0.2.77')).toBe('192.0.2.0/24');
    expect(networkOf('2001:db8:1:2::5')).toBe('2001:db8:1:2::/64');
    expect(networkOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
  });
});
