// The policy administration API on both stores: add, list, expiry, the analyzer's upsert, pin, extend, purge, sources.
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type StoreDb } from '../store/db.ts';
import { freshPgSchema, tempDir } from '../../test/harness/postern.ts';
import { STRICT } from '../../test/harness/services.ts';
import {
  addPolicy,
  extendPolicy,
  getPolicy,
  getSource,
  listPolicies,
  listSources,
  pinPolicy,
  purgeExpiredPolicies,
  removePolicy,
  upsertFinding,
  validatePolicyInput,
  type PolicyInput,
} from './admin.ts';
import { PolicyTable } from './live.ts';

const T0 = 1_800_000_000_000;
const MIN = 60_000;

/** services.ts probes PostgreSQL only for the postgres project; this file runs on both stores in every project. */
async function pgMissing(): Promise<string | undefined> {
  const open = await new Promise<boolean>((resolve) => {
    const s = net.connect({ port: 5432, host: '127.0.0.1' });
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
  if (open) return undefined;
  const why = 'PostgreSQL is not listening on 127.0.0.1:5432';
  if (STRICT) throw new Error(`required service missing under POSTERN_STRICT_SERVICES: ${why}`);
  console.warn(`SKIPPED: ${why}`);
  return why;
}

const harvest = (over: Partial<PolicyInput> = {}): PolicyInput => ({
  target_kind: 'ip',
  target: '203.0.113.9',
  action: 'block',
  reason: 'harvest: 20 unknown recipients in 1h',
  evidence: { unknown: 20, window_s: 3600, samples: [{ rcpt: 'a@x.test' }] },
  ttl_s: 3600,
  source: 'analyzer:harvest',
  ...over,
});

const stores: [string, () => Promise<{ s: StoreDb; done(): Promise<void> }>, string | undefined][] = [
  [
    'sqlite',
    async () => {
      const dir = tempDir();
      const s = await openStore({ url: '', dataDir: dir });
      return { s, done: async () => (await s.close(), fs.rmSync(dir, { recursive: true, force: true })) };
    },
    undefined,
  ],
  [
    'postgres',
    async () => {
      const schema = await freshPgSchema();
      const s = await openStore({ url: schema.url, dataDir: tempDir() });
      return { s, done: async () => (await s.close(), await schema.drop()) };
    },
    await pgMissing(),
  ],
];

describe.each(stores)('policy admin on %s', (_name, open, skip) => {
  let s: StoreDb;
  let done: () => Promise<void>;
  beforeAll(async () => {
    if (skip) return;
    ({ s, done } = await open());
  });
  afterAll(async () => {
    await done?.();
  });
  // Each test starts from an empty table, so one failure does not spill into the next.
  beforeEach(async () => {
    if (!skip) await s.db.deleteFrom('policies').execute();
  });

  it.skipIf(skip)('adds, gets and lists; an expired policy leaves the default list but not --all', async () => {
    const a = await addPolicy(s.db, { target_kind: 'cidr', target: '198.51.100.77/24', action: 'throttle', params: { rate: 10, window_s: 60 }, reason: 'flood', ttl_s: 600 }, T0);
    const b = await addPolicy(s.db, harvest({ ttl_s: 60 }), T0 + 1);
    expect(a.id).toMatch(/^P[0-9A-Z]{20}$/);
    expect(a).toMatchObject({ target: '198.51.100.0/24', expires_at: T0 + 600_000, source: 'admin', pinned: false, state: 'active' });
    const got = await getPolicy(s.db, b.id, T0 + 2);
    expect(got).toEqual({ ...b, state: 'active' });
    expect(got!.evidence).toEqual({ unknown: 20, window_s: 3600, samples: [{ rcpt: 'a@x.test' }] });
    expect((await listPolicies(s.db, {}, T0 + 2)).map((p) => p.id)).toEqual([b.id, a.id]);
    // Two minutes on, the harvest block (60 s) has expired and the throttle (10 min) has not.
    const later = T0 + 2 * MIN;
    expect((await listPolicies(s.db, {}, later)).map((p) => p.id)).toEqual([a.id]);
    expect((await getPolicy(s.db, b.id, later))!.state).toBe('expired');
    expect((await listPolicies(s.db, { all: true }, later)).map((p) => p.id)).toEqual([b.id, a.id]);
    expect((await listPolicies(s.db, { all: true, source: 'analyzer' }, later)).map((p) => p.id)).toEqual([b.id]);
    expect((await listPolicies(s.db, { all: true, source: 'admin' }, later)).map((p) => p.id)).toEqual([a.id]);
    expect((await listPolicies(s.db, { all: true, target: '198.51.100.0/24' }, later)).map((p) => p.id)).toEqual([a.id]);
    expect(await listPolicies(s.db, { all: true, limit: 1 }, later)).toHaveLength(1);
  });

  it.skipIf(skip)('upsertFinding extends an active policy and replaces its evidence, and adds when none is active', async () => {
    const first = await upsertFinding(s.db, harvest({ target: '192.0.2.1' }), T0);
    expect(first.created).toBe(true);
    const again = await upsertFinding(s.db, harvest({ target: '192.0.2.1', evidence: { unknown: 40 }, ttl_s: 7200 }), T0 + MIN);
    expect(again.created).toBe(false);
    expect(again.row.id).toBe(first.row.id);
    expect(again.row.expires_at).toBe(T0 + MIN + 7_200_000);
    expect((await getPolicy(s.db, first.row.id, T0 + MIN))!.evidence).toEqual({ unknown: 40 });
    // A shorter finding never shortens the block.
    const shorter = await upsertFinding(s.db, harvest({ target: '192.0.2.1', evidence: { unknown: 41 }, ttl_s: 60 }), T0 + 2 * MIN);
    expect(shorter.row.expires_at).toBe(T0 + MIN + 7_200_000);
    expect(shorter.row.evidence).toEqual({ unknown: 41 });
    // Another action on the same target is another policy.
    const defer = await upsertFinding(s.db, harvest({ target: '192.0.2.1', action: 'defer' }), T0 + 2 * MIN);
    expect(defer.created).toBe(true);
    // Once the block has expired, the next finding starts a new one.
    const after = await upsertFinding(s.db, harvest({ target: '192.0.2.1' }), T0 + 3 * 3_600_000);
    expect(after.created).toBe(true);
    expect(after.row.id).not.toBe(first.row.id);
    const rows = await listPolicies(s.db, { all: true, target: '192.0.2.1' }, T0 + 3 * 3_600_000);
    expect(rows.map((r) => [r.action, r.state])).toEqual([['block', 'active'], ['defer', 'expired'], ['block', 'expired']]);
  });

  it.skipIf(skip)('a pinned policy never expires and the analyzer and extend leave it alone', async () => {
    const p = await upsertFinding(s.db, harvest({ target: '192.0.2.2' }), T0);
    const pinned = await pinPolicy(s.db, p.row.id, true);
    expect(pinned).toMatchObject({ pinned: true, expires_at: null });
    const up = await upsertFinding(s.db, harvest({ target: '192.0.2.2', evidence: { unknown: 99 }, ttl_s: 60 }), T0 + 10 * 3_600_000);
    expect(up).toMatchObject({ created: false, row: { id: p.row.id, expires_at: null, state: 'active' } });
    expect(up.row.evidence).toEqual(p.row.evidence);
    expect(await extendPolicy(s.db, p.row.id, 60, T0)).toMatchObject({ pinned: true, expires_at: null });
    expect(await purgeExpiredPolicies(s.db, 0, T0 + 1000 * 86_400_000)).toBe(0);
    const unpinned = await pinPolicy(s.db, p.row.id, false);
    expect(unpinned).toMatchObject({ pinned: false, expires_at: null });
    expect(await pinPolicy(s.db, 'Pnope', true)).toBeUndefined();
  });

  it.skipIf(skip)('extend sets the expiry from now, never removes it, and revives an expired policy', async () => {
    const p = await addPolicy(s.db, harvest({ target: '192.0.2.3', ttl_s: 60 }), T0);
    expect(await extendPolicy(s.db, p.id, 3600, T0 + 5 * MIN)).toMatchObject({ expires_at: T0 + 5 * MIN + 3_600_000, state: 'active' });
    expect(await extendPolicy(s.db, p.id, null, T0)).toMatchObject({ expires_at: null });
    expect(await extendPolicy(s.db, 'Pnope', 60, T0)).toBeUndefined();
    await expect(extendPolicy(s.db, p.id, 0, T0)).rejects.toThrow(/ttl_s/);
    expect(await removePolicy(s.db, p.id)).toBe(true);
    expect(await removePolicy(s.db, p.id)).toBe(false);
    expect(await getPolicy(s.db, p.id)).toBeUndefined();
  });

  it.skipIf(skip)('purgeExpiredPolicies deletes unpinned policies expired long enough ago', async () => {
    const old = await addPolicy(s.db, harvest({ target: '192.0.2.10', ttl_s: 60 }), T0);
    const recent = await addPolicy(s.db, harvest({ target: '192.0.2.11', ttl_s: 60 }), T0 + 40 * MIN);
    const forever = await addPolicy(s.db, harvest({ target: '192.0.2.12', ttl_s: null }), T0);
    const pinned = await addPolicy(s.db, harvest({ target: '192.0.2.13', pinned: true }), T0);
    expect(pinned.expires_at).toBeNull();
    expect(await purgeExpiredPolicies(s.db, 30 * MIN, T0 + 60 * MIN)).toBe(1);
    const left = (await listPolicies(s.db, { all: true }, T0 + 60 * MIN)).map((p) => p.id).sort();
    expect(left).toEqual([recent.id, forever.id, pinned.id].sort());
    expect(left).not.toContain(old.id);
  });

  it.skipIf(skip)('a policy written here is matched by the gateway\'s PolicyTable', async () => {
    const p = await addPolicy(s.db, { target_kind: 'cidr', target: '2001:DB8:0:0:1::5/64', action: 'block', reason: 'bad net', ttl_s: 60 }, T0);
    const live = new PolicyTable(s.db);
    await live.load(T0 + 1000);
    expect(live.match({ ip: '2001:db8::abcd' }, T0 + 1000).map((x) => x.id)).toEqual([p.id]);
    expect(live.match({ ip: '2001:db9::1' }, T0 + 1000)).toEqual([]);
    expect(live.match({ ip: '2001:db8::abcd' }, T0 + 61_000)).toEqual([]);
  });

  it.skipIf(skip)('sources: one row with its JSON parsed and derived ratios; lists by order and kind', async () => {
    const base = { first_seen: T0, connections: 3, messages: 5, quarantined: 1, delivered: 4, protocol_errors: 0, score_hist: '{"0-2":4,"8-15":1}', actions: '{"accept":4,"quarantine":1}' };
    await s.db
      .insertInto('source_stats')
      .values([
        { ...base, kind: 'ip', key: '203.0.113.9', last_seen: T0 + 3, recipients: 40, unknown_recipients: 30, refused: 2, score_sum: 12, score_n: 5 },
        { ...base, kind: 'ip', key: '203.0.113.10', last_seen: T0 + 2, recipients: 10, unknown_recipients: 0, refused: 9, score_sum: 0, score_n: 0 },
        { ...base, kind: 'net', key: '203.0.113.0/24', last_seen: T0 + 1, recipients: 50, unknown_recipients: 30, refused: 11, score_sum: 12, score_n: 5 },
      ])
      .execute();
    const ip = await getSource(s.db, 'ip', '::ffff:203.0.113.9');
    expect(ip).toMatchObject({ kind: 'ip', key: '203.0.113.9', recipients: 40, unknown_ratio: 0.75, score_avg: 2.4, score_hist: { '0-2': 4, '8-15': 1 }, actions: { accept: 4, quarantine: 1 } });
    expect((await getSource(s.db, 'ip', '203.0.113.10'))!.score_avg).toBeNull();
    expect(await getSource(s.db, 'cidr', '203.0.113.200/24')).toMatchObject({ kind: 'net', key: '203.0.113.0/24' });
    expect(await getSource(s.db, 'ip', '198.51.100.1')).toBeUndefined();
    const keys = async (o: Parameters<typeof listSources>[1]) => (await listSources(s.db, o)).map((r) => r.key);
    expect(await keys({})).toEqual(['203.0.113.9', '203.0.113.10', '203.0.113.0/24']);
    expect(await keys({ kind: 'ip', order: 'refused' })).toEqual(['203.0.113.10', '203.0.113.9']);
    expect(await keys({ order: 'unknown', limit: 2 })).toEqual(['203.0.113.9', '203.0.113.0/24']);
    await expect(listSources(s.db, { kind: 'asn' })).rejects.toThrow(/kind "asn"/);
  });
});

describe('validatePolicyInput', () => {
  const ok = { target_kind: 'ip', target: '192.0.2.1', action: 'block', reason: 'r' };
  it.each([
    [{ ...ok, target: '300.1.1.1' }, 'target "300.1.1.1" is not an IP address'],
    [{ ...ok, target_kind: 'cidr', target: '10.0.0.0/33' }, 'target "10.0.0.0/33" is not a network'],
    [{ ...ok, target_kind: 'sender', target: 'bob' }, 'target "bob" is not a mail address or *@domain'],
    [{ ...ok, target_kind: 'domain', target: 'not a domain' }, 'target "not a domain" is not a domain'],
    [{ ...ok, target_kind: 'helo', target: '  ' }, 'target must not be empty'],
    [{ ...ok, target_kind: 'host' }, 'target_kind "host" is not one of ip, cidr'],
    [{ ...ok, action: 'discard' }, 'action "discard" is not one of block'],
    [{ ...ok, reason: '' }, 'reason must not be empty'],
    [{ ...ok, ttl_s: 0 }, 'ttl_s must be at least 1'],
    [{ ...ok, ttl_s: 1.5 }, 'ttl_s must be a whole number'],
    [{ ...ok, action: 'throttle', params: { rate: 0, window_s: 60 } }, 'params.rate must be at least 1'],
    [{ ...ok, action: 'throttle', params: { rate: 5 } }, 'params.window_s is missing'],
    [{ ...ok, params: { rate: 5 } }, 'params.rate is not a parameter of action block'],
    [{ ...ok, action: 'redirect', params: { to: 'nobody' } }, 'params.to must be a mail address'],
    [{ ...ok, action: 'tarpit', params: { delay_ms: 60_000 } }, 'params.delay_ms must be at most 30000'],
    [{ ...ok, params: { null_sender: true } }, 'params.null_sender applies only to recipient targets, not ip'],
    [{ ...ok, params: { for: 'nobody' } }, 'params.for must be a mail address or *@domain'],
    [{ ...ok, target_kind: 'recipient', target: 'a@example.org', params: { for: 'b@example.org' } }, 'params.for scopes a source'],
    [{ ...ok, colour: 'red' }, 'colour is not a policy field'],
    [{ ...ok, source: 'Some One' }, 'source is malformed'],
  ])('%o → %s', (input, message) => {
    expect(() => validatePolicyInput(input)).toThrow(message);
  });

  it('normalises targets to the form the gateway compares', () => {
    const t = (target_kind: string, target: string) => validatePolicyInput({ ...ok, target_kind, target }).target;
    expect(t('ip', '::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(t('ip', '2001:0DB8:0000::0001')).toBe('2001:db8::1');
    expect(t('cidr', '198.51.100.77/24')).toBe('198.51.100.0/24');
    expect(t('cidr', '192.0.2.5')).toBe('192.0.2.5/32');
    expect(t('cidr', '::ffff:192.0.2.5/120')).toBe('192.0.2.0/24');
    expect(t('cidr', '2001:db8:1:2:3::/48')).toBe('2001:db8:1::/48');
    expect(t('sender', 'Bob@Example.COM')).toBe('bob@example.com');
    expect(t('sender', '*@Example.com')).toBe('*@example.com');
    expect(t('domain', '*@Example.com.')).toBe('example.com');
    expect(validatePolicyInput({ ...ok, action: 'throttle', params: { rate: 5, window_s: 60 } })).toMatchObject({ params: { rate: 5, window_s: 60 }, source: 'admin', pinned: false });
    // What the analyzer's detectors write is accepted as it is.
    expect(validatePolicyInput({ ...ok, target_kind: 'recipient', target: 'Ops@Example.com', action: 'quarantine', params: { null_sender: true }, source: 'analyzer:backscatter' })).toMatchObject({ target: 'ops@example.com', params: { null_sender: true } });
    expect(validatePolicyInput({ ...ok, target_kind: 'user', target: 'bob', action: 'tarpit', params: { delay_ms: 5000 }, source: 'analyzer:brute_force' }).source).toBe('analyzer:brute_force');
    expect(validatePolicyInput({ ...ok, params: undefined }).params).toEqual({});
  });
});
