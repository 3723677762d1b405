// The index's window kept in the real store (SQLite, or PostgreSQL with POSTERN_TEST_STORE=postgres): a restart
// gets back every entry in its cluster, merges included; old rows are pruned; a damaged row is skipped and named.
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildMessageView } from '../analysis/message-view.ts';
import { configSchema } from '../config/schema.ts';
import type { StoreDb } from '../store/db.ts';
import { openTestStore } from '../../test/harness/postern.ts';
import { fingerprintOf, type Fingerprint } from './fingerprint.ts';
import { indexOptionsOf, SimilarityIndex, type EntryFacts } from './index.ts';
import { SimilarityStore } from './store.ts';
import { template, variant } from './fixtures.ts';

const OPTIONS = indexOptionsOf(configSchema.parse({}).similarity);
const H = 3_600_000;
const T0 = Date.UTC(2025, 10, 20);

let store: StoreDb;
let close: () => Promise<void>;
beforeEach(async () => ({ store, close } = await openTestStore()));
afterEach(() => close());

const facts = (i: number): EntryFacts => ({ ip: `198.51.100.${i}`, senderDomain: `d${i % 3}.example`, recipients: 1 + (i % 2), suspicious: i % 2 === 0 });

/** Variants of a threat fixture, tied together by one file all of them carry, so that they surely form one cluster. */
async function campaign(file: string, n: number, seed: number): Promise<Fingerprint[]> {
  const t = await template(file);
  const shared = createHash('sha256').update(file).digest('hex');
  return Promise.all(
    Array.from({ length: n }, async (_, i) => ({ ...(await fingerprintOf(await buildMessageView(await variant(t, seed + i)))), attachments: [shared] })),
  );
}

describe('SimilarityStore', () => {
  it('restores the window with every entry in its cluster after a restart', async () => {
    const [docs, phish] = await Promise.all([campaign('macro-doc.eml', 4, 100), campaign('lookalike-brand-phish.eml', 4, 200)]);
    const index = new SimilarityIndex(OPTIONS);
    const db = new SimilarityStore(store.db);
    const all = [...docs.map((f, i) => [`doc${i}`, f] as const), ...phish.map((f, i) => [`phish${i}`, f] as const)];
    for (const [i, [id, f]] of all.entries()) await db.record(id, f, T0 + i * H, facts(i), index.insert(id, f, T0 + i * H, facts(i)));
    const before = new Map(all.map(([id]) => [id, index.clusterOf(id)]));
    expect(new Set(before.values()).size).toBe(2);

    const again = new SimilarityIndex(OPTIONS);
    expect(await new SimilarityStore(store.db).load(again, T0 + 8 * H)).toEqual({ loaded: 8, skipped: 0 });
    for (const [id, cluster] of before) expect(again.clusterOf(id), id).toBe(cluster);
    expect(again.listClusters()).toEqual(index.listClusters());
    // The restored index goes on matching: the next copy joins its campaign, a new cluster gets a fresh id.
    const next = again.insert('doc9', (await campaign('macro-doc.eml', 1, 999))[0], T0 + 9 * H, facts(9));
    expect(next.cluster).toBe(before.get('doc0'));
    const fresh = again.insert('other', (await campaign('exe-in-zip.eml', 1, 300))[0], T0 + 9 * H, facts(10));
    expect(fresh.created).toBe(true);
    expect([...before.values()]).not.toContain(fresh.cluster);
  });

  it('keeps a merge across a restart, prunes old rows and skips a damaged one', async () => {
    const index = new SimilarityIndex(OPTIONS);
    const db = new SimilarityStore(store.db);
    const [doc] = await campaign('macro-doc.eml', 1, 1);
    const [phish] = await campaign('lookalike-brand-phish.eml', 1, 2);
    // A copy with the phish's text and the document's attachment bridges the two clusters.
    const bridge: Fingerprint = { ...phish, attachments: doc.attachments };
    expect(doc.attachments).not.toEqual(phish.attachments);
    const rows: [string, Fingerprint][] = [['doc', doc], ['phish', phish], ['bridge', bridge]];
    for (const [i, [id, f]] of rows.entries()) await db.record(id, f, T0 + i, facts(i), index.insert(id, f, T0 + i, facts(i)));
    expect(index.clusterOf('phish')).toBe(index.clusterOf('doc'));
    await store.db.insertInto('similarity_entries').values({ id: 'bad', ts: T0 + 5, cluster: 1, fingerprint: '{"v":1,"minhash":[1,2]}', facts: '{}' }).execute();
    await store.db.insertInto('similarity_entries').values({ id: 'old', ts: T0 - 49 * H, cluster: 7, fingerprint: JSON.stringify(doc), facts: JSON.stringify(facts(0)) }).execute();

    const again = new SimilarityIndex(OPTIONS);
    expect(await db.load(again, T0 + H)).toEqual({ loaded: 3, skipped: 1 });
    expect(again.listClusters()).toEqual([expect.objectContaining({ id: index.clusterOf('doc'), members: 3, ips: 3 })]);
    expect(await db.prune(T0 + H - OPTIONS.windowMs)).toBe(1);
    const left = await store.db.selectFrom('similarity_entries').select('id').orderBy('id').execute();
    expect(left.map((r) => r.id)).toEqual(['bad', 'bridge', 'doc', 'phish']);
  });
});
