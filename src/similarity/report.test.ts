// The clusters' read side and the admin's mark on a real store: verdicts from the policies, one cluster's members with
// what was done to each copy, its events picked out by cluster id, and a mark that replaces the previous one.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoreDb } from '../store/db.ts';
import { openTestStore } from '../../test/harness/postern.ts';
import { addPolicy, listPolicies } from '../policy/admin.ts';
import { PolicyTable } from '../policy/live.ts';
import { ClusterError, listClusters, markCluster, showCluster } from './report.ts';

const T0 = Date.UTC(2026, 10, 30, 9);
const MIN = 60_000;
// B's decimal form starts with A's, which a loose match on the events' JSON would confuse.
const A = T0;
const B = A * 10 + 7;
const C = A + 1;

let store: StoreDb;
let close: () => Promise<void>;
beforeEach(async () => ({ store, close } = await openTestStore()));
afterEach(() => close());

async function cluster(id: number, o: { state?: string; first?: number; last?: number; members?: number; subject?: string } = {}) {
  await store.db
    .insertInto('clusters')
    .values({
      id,
      first_seen: o.first ?? T0,
      last_seen: o.last ?? T0 + 10 * MIN,
      members: o.members ?? 3,
      ips: 3,
      sender_domains: 2,
      recipients: 4,
      suspicious: 2,
      state: o.state ?? 'watching',
      declared_at: o.state === 'outbreak' ? T0 + 5 * MIN : null,
      declared_by: o.state === 'outbreak' ? 'outbreak-rule' : null,
      subject: o.subject ?? 'Invoice overdue',
      updated_at: o.last ?? T0 + 10 * MIN,
    })
    .execute();
}

/** A message of the cluster with its recipients (rcpt, status, route). */
async function member(id: string, clusterId: number, ts: number, rcpts: [string, string, string][], ip = '198.51.100.7', suspicious = true) {
  await store.db
    .insertInto('similarity_entries')
    .values({ id, ts, cluster: clusterId, fingerprint: '{}', facts: JSON.stringify({ ip, senderDomain: 'spam.example', recipients: rcpts.length, suspicious }) })
    .execute();
  await store.db
    .insertInto('messages')
    .values({
      id,
      message_id: `<${id}@spam.example>`,
      received_at: ts,
      conn_id: null,
      client_ip: ip,
      helo: 'spam.example',
      mail_from: 'eve@spam.example',
      size: 1000,
      subject: `Invoice ${id}`,
      score: 4,
      symbols: '[]',
      verdict: '{}',
      status: 'done',
    })
    .execute();
  for (const [rcpt, status, route] of rcpts) {
    await store.db
      .insertInto('recipients')
      .values({ msg_id: id, rcpt, action: 'accept', reasons: '[]', status, route, deliver_to: rcpt, attempts: 1, next_attempt_at: 0, last_error: null, updated_at: ts })
      .execute();
  }
}

/** An event as emit() writes it: the copy's queue id in the msg_id column, the rest in the data. */
async function event(type: string, ts: number, { msg_id, ...data }: Record<string, unknown>) {
  await store.db.insertInto('events').values({ ts, type, ip: null, conn_id: null, msg_id: typeof msg_id === 'string' ? msg_id : null, data: JSON.stringify(data) }).execute();
}

const outbreakPolicy = (id: number, now: number, ttl_s = 48 * 3600) =>
  addPolicy(store.db, { target_kind: 'cluster', target: String(id), action: 'quarantine', reason: 'outbreak: 3 copies from 3 addresses', source: 'analyzer:outbreak', ttl_s }, now);

describe('listClusters', () => {
  it('lists newest activity first with the verdict of the policies in force, filtered by state, time and count', async () => {
    await cluster(A, { state: 'outbreak', last: T0 + 30 * MIN });
    await cluster(B, { state: 'safe', last: T0 + 20 * MIN });
    await cluster(C, { last: T0 + 10 * MIN });
    const now = T0 + 40 * MIN;
    const declared = await outbreakPolicy(A, T0 + 5 * MIN);
    await outbreakPolicy(B, T0 + 5 * MIN);
    const safe = await addPolicy(store.db, { target_kind: 'cluster', target: String(B), action: 'allow', reason: 'newsletter', source: 'admin' }, T0 + 15 * MIN);
    await outbreakPolicy(C, T0, 60); // expired long ago

    const all = await listClusters(store.db, {}, now);
    expect(all.map((c) => [c.id, c.state, c.verdict, c.policy])).toEqual([
      [A, 'outbreak', 'outbreak', declared.id],
      [B, 'safe', 'safe', safe.id],
      [C, 'watching', null, null],
    ]);
    expect(all[0]).toMatchObject({ members: 3, ips: 3, sender_domains: 2, recipients: 4, suspicious: 2, declared_by: 'outbreak-rule', subject: 'Invoice overdue' });
    expect((await listClusters(store.db, { state: 'watching' }, now)).map((c) => c.id)).toEqual([C]);
    expect((await listClusters(store.db, { since: T0 + 20 * MIN }, now)).map((c) => c.id)).toEqual([A, B]);
    expect((await listClusters(store.db, { limit: 1 }, now)).map((c) => c.id)).toEqual([A]);
    expect(await listClusters(store.db, { state: 'outbreak', since: T0 + 31 * MIN }, now)).toEqual([]);
  });
});

describe('showCluster', () => {
  it('tells the members, what was done to each copy, its own events only, and where copies went out to', async () => {
    await cluster(A, { state: 'outbreak' });
    await cluster(B);
    await member('Q1', A, T0 + MIN, [['ann@example.com', 'delivered', 'downstream'], ['bob@example.com', 'quarantined', 'quarantine']], '198.51.100.1');
    await member('Q2', A, T0 + 2 * MIN, [['cat@example.com', 'pulled_back', 'downstream']], '198.51.100.2', false);
    await member('Q3', A, T0 + 3 * MIN, [['dan@example.com', 'delivered', 'outbound']], '198.51.100.3');
    await member('Q9', B, T0 + 3 * MIN, [['eve@example.com', 'delivered', 'downstream']]);
    const declared = await outbreakPolicy(A, T0 + 5 * MIN);
    await event('outbreak.declared', T0 + 5 * MIN, { cluster: A, stats: { members: 3 }, by: 'outbreak-rule' });
    await event('retro.quarantined', T0 + 5 * MIN + 1, { cluster: A, msg_id: 'Q1', rcpt: 'bob@example.com' });
    await event('retro.failed', T0 + 5 * MIN + 2, { cluster: A, msg_id: 'Q1', rcpt: 'ann@example.com', error: 'connect ECONNREFUSED' });
    await event('retro.pulled_back', T0 + 5 * MIN + 3, { cluster: String(A), msg_id: 'Q2', rcpt: 'cat@example.com', outcome: 'moved', where: 'INBOX' });
    await event('retro.forwarded', T0 + 5 * MIN + 4, { cluster: A, msg_id: 'Q3', to: ['Partner@Other.example', 'x@third.example'] });
    // Another cluster's (its id begins with A's digits), one from before the cluster was, one of another type.
    await event('retro.quarantined', T0 + 5 * MIN + 5, { cluster: B, msg_id: 'Q9', rcpt: 'eve@example.com' });
    await event('retro.forwarded', T0 - 60 * MIN, { cluster: A, msg_id: 'Q3', to: ['old@past.example'] });
    await event('trends.finding', T0 + 6 * MIN, { cluster: A });

    const d = (await showCluster(store.db, A, {}, T0 + 20 * MIN))!;
    expect(d.cluster).toMatchObject({ id: A, state: 'outbreak', verdict: 'outbreak', policy: declared.id });
    expect(d.policies.map((p) => p.id)).toEqual([declared.id]);
    expect(d.membersTotal).toBe(3);
    expect(d.members.map((m) => [m.id, m.ip, m.sender, m.subject, m.message_id, m.suspicious])).toEqual([
      ['Q1', '198.51.100.1', 'eve@spam.example', 'Invoice Q1', '<Q1@spam.example>', true],
      ['Q2', '198.51.100.2', 'eve@spam.example', 'Invoice Q2', '<Q2@spam.example>', false],
      ['Q3', '198.51.100.3', 'eve@spam.example', 'Invoice Q3', '<Q3@spam.example>', true],
    ]);
    expect(d.members[0].recipients.map((r) => [r.rcpt, r.status, r.retro?.type ?? null])).toEqual([
      ['ann@example.com', 'delivered', 'retro.failed'],
      ['bob@example.com', 'quarantined', 'retro.quarantined'],
    ]);
    expect(d.members[1].recipients[0]).toMatchObject({ status: 'pulled_back', retro: { type: 'retro.pulled_back', data: { outcome: 'moved' } } });
    expect(d.members[2].forwarded).toEqual(['partner@other.example', 'x@third.example']);
    expect(d.forwardedTo).toEqual(['partner@other.example', 'x@third.example']);
    expect(d.events.map((e) => e.type)).toEqual(['outbreak.declared', 'retro.quarantined', 'retro.failed', 'retro.pulled_back', 'retro.forwarded']);

    const first = (await showCluster(store.db, A, { limit: 2 }, T0 + 20 * MIN))!;
    expect(first.members.map((m) => m.id)).toEqual(['Q1', 'Q2']);
    expect(first.membersTotal).toBe(3);
    expect((await showCluster(store.db, B))!.events.map((e) => e.msg_id)).toEqual(['Q9']);
  });

  it('counts a cluster the detector has not summarised yet from its entries; knows no other', async () => {
    await member('Q1', C, T0 + MIN, [['ann@example.com', 'delivered', 'downstream']], '198.51.100.1');
    await member('Q2', C, T0 + 4 * MIN, [['bob@example.com', 'queued', 'downstream'], ['cat@example.com', 'queued', 'downstream']], '198.51.100.2', false);
    const d = (await showCluster(store.db, C))!;
    expect(d.cluster).toMatchObject({ id: C, state: 'watching', verdict: null, members: 2, ips: 2, sender_domains: 1, recipients: 3, suspicious: 1, first_seen: T0 + MIN, last_seen: T0 + 4 * MIN, subject: 'Invoice Q1' });
    expect(d.members).toHaveLength(2);
    expect(d.forwardedTo).toEqual([]);
    expect(await showCluster(store.db, 42)).toBeUndefined();
  });
});

describe('markCluster', () => {
  it('writes the admin verdict as a policy; a later mark replaces it, and safe lifts the detector\'s declaration', async () => {
    await cluster(A, { state: 'outbreak' });
    const now = T0 + 20 * MIN;
    const declared = await outbreakPolicy(A, T0 + 5 * MIN);
    const bad = await markCluster(store.db, A, 'bad', { by: 'cli:root' }, now);
    expect(bad).toMatchObject({ target_kind: 'cluster', target: String(A), action: 'quarantine', source: 'admin', expires_at: null, reason: 'marked bad by cli:root' });
    expect(bad.evidence).toEqual({ verdict: 'bad', by: 'cli:root', cluster: { members: 3, ips: 3, sender_domains: 2, recipients: 4, suspicious: 2, state: 'outbreak' } });
    expect((await listClusters(store.db, {}, now))[0]).toMatchObject({ verdict: 'bad', policy: bad.id });
    // A bad mark leaves the detector's declaration as it is.
    expect((await listPolicies(store.db, { target: String(A) }, now)).map((p) => p.id).sort()).toEqual([bad.id, declared.id].sort());

    const safe = await markCluster(store.db, A, 'safe', { by: 'api', reason: 'our own newsletter' }, now + 1);
    expect(safe).toMatchObject({ action: 'allow', reason: 'our own newsletter', source: 'admin', evidence: { lifted: [declared.id] } });
    expect((await listPolicies(store.db, { target: String(A) }, now + 1)).map((p) => p.id)).toEqual([safe.id]);
    const d = (await showCluster(store.db, A, {}, now + 1))!;
    expect(d.cluster).toMatchObject({ verdict: 'safe', policy: safe.id });
    // Expired, not deleted: it still explains what was done to the copies before.
    expect(d.policies.map((p) => [p.id, p.state])).toEqual([
      [safe.id, 'active'],
      [declared.id, 'expired'],
    ]);

    // The gateway's table sees the mark as it sees any cluster policy, and no longer the declaration.
    const table = new PolicyTable(store.db);
    await table.load(now + 1);
    expect(table.forCluster(A, now + 1).map((p) => p.id)).toEqual([safe.id]);

    const block = await markCluster(store.db, A, 'bad', { by: 'api', action: 'block' }, now + 2);
    expect(block.action).toBe('block');
    expect((await listPolicies(store.db, { all: true, target: String(A) }, now + 2)).map((p) => [p.id, p.state])).toEqual([
      [block.id, 'active'],
      [declared.id, 'expired'],
    ]);
  });

  it('refuses an unknown cluster and an action with a safe verdict, writing nothing', async () => {
    await cluster(A);
    const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ClusterError);
    expect(await err(markCluster(store.db, 42, 'bad', { by: 'api' }))).toMatchObject({ code: 'not_found', message: 'no cluster 42' });
    expect(await err(markCluster(store.db, A, 'safe', { by: 'api', action: 'block' }))).toMatchObject({ code: 'bad_request' });
    expect(await listPolicies(store.db, { all: true })).toEqual([]);
  });
});
