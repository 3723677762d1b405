// A gateway's mirror of the analyzer's clusters on a real store (SQLite, or PostgreSQL with POSTERN_TEST_STORE=
// postgres): rows the analyzer writes are read by poll(), its merges followed; the gateway's own recent copies counted
// with them; the copy that makes a cluster meet the outbreak rule tips it; an admin's "safe" keeps it from tipping;
// a cluster younger than hold_s is young.
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildMessageView } from '../analysis/message-view.ts';
import { configSchema, type ConfigInput } from '../config/schema.ts';
import type { StoreDb } from '../store/db.ts';
import { openTestStore } from '../../test/harness/postern.ts';
import { addPolicy } from '../policy/admin.ts';
import { PolicyTable } from '../policy/live.ts';
import { campaignVariant, ordinaryMessage } from '../retro/simulate.ts';
import { fingerprintOf, type Fingerprint } from './fingerprint.ts';
import { indexOptionsOf, SimilarityIndex, type EntryFacts } from './index.ts';
import { SimilarityStore } from './store.ts';
import { ClusterWatch } from './watch.ts';

const NOW = Date.now();
const S = 1000;

let store: StoreDb;
let close: () => Promise<void>;
beforeEach(async () => ({ store, close } = await openTestStore()));
afterEach(() => close());

const fpOf = async (body: string): Promise<Fingerprint> => fingerprintOf(await buildMessageView(Buffer.from(body)));
const copy = (i: number) => fpOf(campaignVariant(i, `user${i}@example.org`, 'example.org').body);
const facts = (i: number, suspicious = true): EntryFacts => ({ ip: `198.51.100.${i}`, senderDomain: `d${i}.example`, recipients: 1, suspicious });
const config = (o: ConfigInput['outbreak'] = {}) => configSchema.parse({ outbreak: o });

/** The analyzer's side: its index, and its rows written as the detector's flush writes them. */
class Analyzer {
  readonly index = new SimilarityIndex(indexOptionsOf(config().similarity));
  private readonly store = new SimilarityStore(store.db);

  async add(items: [string, Fingerprint, number, EntryFacts][]): Promise<number[]> {
    const rows = items.map(([id, fp, ts, f]) => ({ id, fp, ts, facts: f, result: this.index.insert(id, fp, ts, f) }));
    await this.store.recordMany(store.db, rows);
    return rows.map((r) => r.result.cluster);
  }
}

async function policies(): Promise<PolicyTable> {
  const t = new PolicyTable(store.db);
  await t.load();
  return t;
}

describe('ClusterWatch', () => {
  it("mirrors the analyzer's rows and follows its merges", async () => {
    const a = new Analyzer();
    const w = new ClusterWatch(store.db, config());
    const fps = await Promise.all([0, 1, 2].map(copy));
    const [c0, c1] = await a.add([
      ['m0', fps[0], NOW - 30 * S, facts(0)],
      ['m1', fps[1], NOW - 20 * S, facts(1)],
    ]);
    expect(c1).toBe(c0);
    expect(await w.poll(NOW)).toBe(2);
    expect(w.index.clusterOf('m0')).toBe(c0);
    expect(w.index.cluster(c0)).toMatchObject({ members: 2, ips: 2, recipients: 2, suspicious: 2 });
    // Nothing new: nothing read again.
    expect(await w.poll(NOW)).toBe(0);
    const v = w.check(fps[2], { ip: '198.51.100.2', recipients: 1, suspicious: false }, await policies(), NOW);
    expect(v.clusters).toEqual([c0]);
    expect(v.best).toMatchObject({ id: c0, members: 2 });
    expect(v.young).toBe(false);

    // Two clusters, mirrored apart; a copy that is like both makes the analyzer merge them, and the mirror follows.
    const hash = (s: string) => createHash('sha256').update(s).digest('hex');
    const other: Fingerprint = { ...(await fpOf(ordinaryMessage(3, 'bob@example.org').body)), attachments: [hash('other')] };
    const camp: Fingerprint = { ...fps[2], attachments: [hash('camp')] };
    const [cOther] = await a.add([['o1', other, NOW - 15 * S, facts(5)]]);
    await a.add([['m2', camp, NOW - 14 * S, facts(2)]]);
    expect(cOther).not.toBe(c0);
    expect(await w.poll(NOW)).toBe(2);
    expect(w.index.clusterOf('o1')).toBe(cOther);
    expect(w.index.clusterOf('m2')).toBe(c0);
    const bridge: Fingerprint = { ...other, attachments: [hash('camp')] };
    const [survivor] = await a.add([['bridge', bridge, NOW - 10 * S, facts(6)]]);
    expect(survivor).toBe(Math.min(c0, cOther));
    expect(a.index.clusterOf('o1')).toBe(survivor);
    expect(await w.poll(NOW)).toBe(1);
    for (const id of ['m0', 'm1', 'm2', 'o1', 'bridge']) expect(w.index.clusterOf(id), id).toBe(survivor);
    expect(w.index.cluster(survivor)).toEqual(a.index.cluster(survivor));
    const rows = await store.db.selectFrom('similarity_entries').select(['id', 'cluster']).execute();
    expect(new Set(rows.map((r) => Number(r.cluster)))).toEqual(new Set([survivor]));
  });

  it('finds a row written late behind the newest one at the next full read, not at every quick one', async () => {
    const a = new Analyzer();
    const w = new ClusterWatch(store.db, config());
    const fps = await Promise.all([0, 1, 2].map(copy));
    await a.add([['n0', fps[0], NOW - 2 * S, facts(0)]]);
    expect(await w.poll(NOW)).toBe(1);
    // Written after the mirror read n0, with a time 5 s before it (a lagging node's row).
    await a.add([
      ['late', fps[1], NOW - 7 * S, facts(1)],
      ['near', fps[2], NOW - 2.5 * S, facts(2)],
    ]);
    expect(await w.poll(NOW, false)).toBe(1);
    expect(w.index.has('near')).toBe(true);
    expect(w.index.has('late')).toBe(false);
    expect(await w.poll(NOW, true)).toBe(1);
    expect(w.index.has('late')).toBe(true);
  });

  it('tips at the third suspicious copy from three addresses, counting its own copies before the mirror has them', async () => {
    const w = new ClusterWatch(store.db, config());
    const fps = await Promise.all([0, 1, 2, 3].map(copy));
    const none = await policies();
    const ask = (i: number, o: { ip?: string; suspicious?: boolean } = {}) =>
      w.check(fps[i], { ip: o.ip ?? `198.51.100.${i}`, recipients: 1, suspicious: o.suspicious ?? true }, none, NOW + i * S);

    const first = ask(0);
    expect(first).toMatchObject({ clusters: [], young: true });
    expect(first.tips).toBeUndefined();
    w.note('g0', fps[0], facts(0), NOW);
    const second = ask(1);
    expect(second.tips).toBeUndefined();
    expect(second.young).toBe(false);
    w.note('g1', fps[1], facts(1), NOW + S);
    // The third from an address already seen is not enough; from a third address it is.
    expect(ask(2, { ip: '198.51.100.1' }).tips).toBeUndefined();
    expect(ask(2, { suspicious: false }).tips).toBeUndefined();
    const third = ask(2);
    expect(third.tips).toMatchObject({ outbreak: true, cluster: 0, evidence: { recent: 3, sources: 3, recipients: 3, suspicious_share: 1 } });

    // The analyzer indexes the two copies; the mirror has them, and they are not counted twice.
    const a = new Analyzer();
    const [c] = await a.add([
      ['g0', fps[0], NOW, facts(0)],
      ['g1', fps[1], NOW + S, facts(1)],
    ]);
    await w.poll(NOW + 2 * S);
    const again = ask(2);
    expect(again.best).toMatchObject({ id: c, members: 2 });
    expect(again.tips).toMatchObject({ cluster: c, evidence: { members: 3, recent: 3, sources: 3 } });
    // A copy that is not suspicious does not tip it.
    expect(ask(2, { suspicious: false }).tips).toBeUndefined();
  });

  it('does not tip a cluster an admin marked safe', async () => {
    const w = new ClusterWatch(store.db, config());
    const fps = await Promise.all([0, 1, 2].map(copy));
    const [c] = await new Analyzer().add([
      ['s0', fps[0], NOW - 2 * S, facts(0)],
      ['s1', fps[1], NOW - S, facts(1)],
    ]);
    await w.poll(NOW);
    const m = { ip: '198.51.100.2', recipients: 1, suspicious: true };
    expect(w.check(fps[2], m, await policies(), NOW).tips).toBeDefined();
    await addPolicy(store.db, { target_kind: 'cluster', target: String(c), action: 'allow', reason: 'marked safe', source: 'admin' });
    const v = w.check(fps[2], m, await policies(), NOW);
    expect(v.safe).toBe(true);
    expect(v.tips).toBeUndefined();
    expect(v.policies).toEqual([expect.objectContaining({ action: 'allow', target: String(c) })]);
  });

  it('calls a cluster younger than hold_s young', async () => {
    const w = new ClusterWatch(store.db, config({ hold_s: 2 }));
    const fps = await Promise.all([0, 1].map(copy));
    const none = await policies();
    const m = { ip: '198.51.100.9', recipients: 1, suspicious: true };
    expect(w.check(fps[1], m, none, NOW).young).toBe(true);
    // Its own held copy makes a cluster born then: young for 2 s, then old enough to judge.
    w.note('h0', fps[0], facts(0), NOW);
    expect(w.check(fps[1], m, none, NOW + 1_500).young).toBe(true);
    expect(w.check(fps[1], m, none, NOW + 2_100).young).toBe(false);
    // The same from the mirror: the cluster's first member decides.
    const w2 = new ClusterWatch(store.db, config({ hold_s: 2 }));
    await new Analyzer().add([['h0', fps[0], NOW, facts(0)]]);
    await w2.poll(NOW);
    expect(w2.check(fps[1], m, none, NOW + 1_000).young).toBe(true);
    expect(w2.check(fps[1], m, none, NOW + 2_500).young).toBe(false);
    // hold_s = 0: only a message like nothing recent is young.
    const w3 = new ClusterWatch(store.db, config());
    await w3.poll(NOW);
    expect(w3.check(fps[1], m, none, NOW + 100).young).toBe(false);
    expect(w3.check(await fpOf(ordinaryMessage(1, 'bob@example.org').body), m, none, NOW + 100).young).toBe(true);
  });
});
