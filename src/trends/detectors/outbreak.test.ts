// The outbreak detector on a real store: events carrying fingerprints go into its index; the copy that makes a
// cluster meet the rule yields a cluster policy with the figures behind it; ordinary mail and our own users'
// outbound copies never do; flush writes the index rows and the cluster summaries; a restart loads both back.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildMessageView } from '../../analysis/message-view.ts';
import { configSchema, type Config } from '../../config/schema.ts';
import { silentLogger } from '../../core/log.ts';
import { openStore, type StoreDb } from '../../store/db.ts';
import { tempDir } from '../../../test/harness/postern.ts';
import { campaignVariant, ordinaryMessage } from '../../retro/simulate.ts';
import { fingerprintOf, type Fingerprint } from '../../similarity/fingerprint.ts';
import { Windows } from '../windows.ts';
import type { DetectorContext, MatrixEvent } from '../detector.ts';
import { OutbreakDetector, senderDomainOf } from './outbreak.ts';

const NOW = Date.now();
const S = 1000;
const MIN = 60 * S;

let store: StoreDb;
let dir: string;

beforeEach(async () => {
  dir = tempDir();
  store = await openStore({ url: '', dataDir: dir });
});

afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const config: Config = configSchema.parse({});
const ctx: DetectorContext = { windows: new Windows(), config, trusted: () => false };
const fpOf = async (body: string): Promise<Fingerprint> => fingerprintOf(await buildMessageView(Buffer.from(body)));

let seq = 0;
/** A message.accepted event as the gateway emits it, fingerprint and all. */
function accepted(msgId: string, fp: Fingerprint, o: { ts: number; ip: string; rcpts?: number; suspicious?: boolean; from?: string; type?: string }): MatrixEvent {
  const rcpts = Array.from({ length: o.rcpts ?? 1 }, (_, i) => ({ rcpt: `user${i}@example.org`, action: 'accept' }));
  const outbound = o.type === 'outbound.accepted';
  return {
    id: ++seq,
    ts: o.ts,
    type: o.type ?? 'message.accepted',
    ip: `::ffff:${o.ip}`,
    conn_id: null,
    msg_id: msgId,
    data: {
      from: o.from ?? 'notify@mail.docs-share.com',
      subject: 'Document shared with you',
      ...(outbound ? { rcpts: rcpts.map((r) => r.rcpt) } : { recipients: rcpts }),
      fp,
      ...(!outbound && { suspicious: o.suspicious ?? true }),
    },
  };
}

const campaign = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => fpOf(campaignVariant(i, `user${i}@example.org`, 'example.org').body)));

describe('OutbreakDetector', () => {
  it('declares the cluster at the copy that meets the rule, with its evidence, and writes rows and summaries', async () => {
    const d = new OutbreakDetector(config);
    await d.load(store.db, NOW, silentLogger);
    const fps = await campaign(4);
    expect(d.observe(accepted('c0', fps[0], { ts: NOW - 3 * S, ip: '198.51.100.1' }), ctx)).toBeUndefined();
    expect(d.observe(accepted('c1', fps[1], { ts: NOW - 2 * S, ip: '198.51.100.2' }), ctx)).toBeUndefined();
    const cluster = d.index.clusterOf('c0') as number;
    expect(d.index.clusterOf('c1')).toBe(cluster);
    await d.flush(store.db, NOW);
    expect(await store.db.selectFrom('clusters').selectAll().execute()).toEqual([
      expect.objectContaining({ id: cluster, members: 2, ips: 2, state: 'watching', declared_at: null, subject: 'Document shared with you' }),
    ]);

    const found = d.observe(accepted('c2', fps[2], { ts: NOW - S, ip: '198.51.100.3' }), ctx);
    expect(found).toHaveLength(1);
    expect(found?.[0]).toMatchObject({
      detector: 'outbreak',
      policy: {
        target_kind: 'cluster',
        target: String(cluster),
        action: 'quarantine',
        source: 'analyzer:outbreak',
        ttl_s: 48 * 3600,
        reason: 'outbreak: 3 similar messages in 60 min from 3 sources to 3 recipients, 100% suspicious',
        evidence: { members: 3, recent: 3, sources: 3, recipients: 3, suspicious_share: 1, first_seen: NOW - 3 * S, last_member: 'c2', merged: [] },
      },
    });
    // Every later member refreshes the declaration.
    expect(d.observe(accepted('c3', fps[3], { ts: NOW, ip: '198.51.100.3', suspicious: false }), ctx)?.[0].policy.evidence).toMatchObject({ last_member: 'c3', members: 4 });
    // An event already indexed is passed over.
    expect(d.observe(accepted('c3', fps[3], { ts: NOW, ip: '198.51.100.4' }), ctx)).toBeUndefined();

    await d.flush(store.db, NOW + S);
    const rows = await store.db.selectFrom('similarity_entries').select(['id', 'cluster', 'facts']).orderBy('id').execute();
    expect(rows.map((r) => [r.id, Number(r.cluster)])).toEqual(['c0', 'c1', 'c2', 'c3'].map((id) => [id, cluster]));
    expect(JSON.parse(rows[0].facts)).toEqual({ ip: '198.51.100.1', senderDomain: 'docs-share.com', recipients: 1, suspicious: true });
    const summary = await store.db.selectFrom('clusters').selectAll().where('id', '=', cluster).executeTakeFirstOrThrow();
    expect(summary).toMatchObject({ members: 4, ips: 3, sender_domains: 1, recipients: 4, suspicious: 3, state: 'outbreak', declared_by: 'outbreak-rule', declared_at: NOW + S, last_seen: NOW });
  });

  it('declares nothing for ordinary mail, nor for a cluster whose only extra members are outbound', async () => {
    const d = new OutbreakDetector(config);
    await d.load(store.db, NOW, silentLogger);
    // Different everyday messages, suspicious or not, from many sources: clusters of one, no finding.
    for (let i = 0; i < 8; i++) {
      const fp = await fpOf(ordinaryMessage(i, `user${i}@example.org`).body);
      expect(d.observe(accepted(`o${i}`, fp, { ts: NOW - 20 * S + i, ip: `192.0.2.${i}`, rcpts: 3 }), ctx), `o${i}`).toBeUndefined();
    }
    expect(d.index.listClusters().every((c) => c.members === 1)).toBe(true);

    // Two suspicious copies from outside; our own users forward it out three times from three addresses.
    const fps = await campaign(5);
    d.observe(accepted('in0', fps[0], { ts: NOW - 5 * S, ip: '198.51.100.1' }), ctx);
    d.observe(accepted('in1', fps[1], { ts: NOW - 4 * S, ip: '198.51.100.2' }), ctx);
    for (let i = 2; i < 5; i++) {
      expect(d.observe(accepted(`out${i}`, fps[i], { ts: NOW - 3 * S + i, ip: `10.0.0.${i}`, rcpts: 2, type: 'outbound.accepted' }), ctx), `out${i}`).toBeUndefined();
    }
    const cluster = d.index.clusterOf('in0') as number;
    expect(d.index.clusterOf('out4')).toBe(cluster);
    expect(d.index.cluster(cluster)).toMatchObject({ members: 2, ips: 2, recipients: 2, outbound: 3 });
    await d.flush(store.db, NOW);
    expect(await store.db.selectFrom('clusters').select(['id', 'state', 'members']).execute()).toEqual([{ id: cluster, state: 'watching', members: 2 }]);
    const out = await store.db.selectFrom('similarity_entries').select(['facts']).where('id', '=', 'out2').executeTakeFirstOrThrow();
    expect(JSON.parse(out.facts)).toMatchObject({ outbound: true, recipients: 2, ip: '10.0.0.2' });
    // A third copy from outside tips it.
    expect(d.observe(accepted('in2', await fpOf(campaignVariant(7, 'x@example.org', 'example.org').body), { ts: NOW, ip: '198.51.100.3' }), ctx)).toHaveLength(1);
  });

  it('loads the index and the declared clusters back after a restart', async () => {
    const fps = await campaign(5);
    const first = new OutbreakDetector(config);
    await first.load(store.db, NOW, silentLogger);
    // Declared two hours ago; the campaign then paused.
    for (let i = 0; i < 3; i++) first.observe(accepted(`r${i}`, fps[i], { ts: NOW - 2 * 60 * MIN + i * S, ip: `198.51.100.${i + 1}` }), ctx);
    const cluster = first.index.clusterOf('r0') as number;
    await first.flush(store.db, NOW - 2 * 60 * MIN + 5 * S);
    expect((await store.db.selectFrom('clusters').select('state').where('id', '=', cluster).executeTakeFirstOrThrow()).state).toBe('outbreak');

    const again = new OutbreakDetector(config);
    await again.load(store.db, NOW, silentLogger);
    expect(again.index.size).toBe(3);
    expect(again.index.cluster(cluster)).toEqual(first.index.cluster(cluster));
    // An event it loaded is not counted twice.
    expect(again.observe(accepted('r2', fps[2], { ts: NOW - 2 * 60 * MIN + 2 * S, ip: '198.51.100.3' }), ctx)).toBeUndefined();
    // One more copy now: alone in the burst window it would not meet the rule, but the cluster was declared, so
    // the policy is refreshed. A fresh detector without the store's rows says nothing of it.
    const late = accepted('r3', fps[3], { ts: NOW, ip: '198.51.100.1' });
    expect(again.observe(late, ctx)?.[0].policy).toMatchObject({ target: String(cluster), evidence: { recent: 1, members: 4, last_member: 'r3' } });
    const blank = new OutbreakDetector(config);
    blank.observe(accepted('r0', fps[0], { ts: NOW - 2 * 60 * MIN, ip: '198.51.100.1' }), ctx);
    blank.observe(accepted('r1', fps[1], { ts: NOW - 2 * 60 * MIN + S, ip: '198.51.100.2' }), ctx);
    expect(blank.observe(accepted('r3', fps[3], { ts: NOW, ip: '198.51.100.1' }), ctx)).toBeUndefined();
  });

  it('writes one summary for clusters merged within a step, under the surviving id', async () => {
    const d = new OutbreakDetector(config);
    await d.load(store.db, NOW, silentLogger);
    const hash = (x: string) => createHash('sha256').update(x).digest('hex');
    const fps = (await campaign(2)).map((fp) => ({ ...fp, attachments: [hash('camp')] }));
    const other = await fpOf(ordinaryMessage(4, 'bob@example.org').body);
    d.observe(accepted('b0', fps[0], { ts: NOW - 4 * S, ip: '198.51.100.1' }), ctx);
    d.observe(accepted('b1', fps[1], { ts: NOW - 3 * S, ip: '198.51.100.2' }), ctx);
    d.observe(accepted('a0', other, { ts: NOW - 2 * S, ip: '192.0.2.1', suspicious: false }), ctx);
    const [b, a] = [d.index.clusterOf('b0') as number, d.index.clusterOf('a0') as number];
    expect(a).not.toBe(b);
    // Like the ordinary message in text, and carrying the campaign's file: the two clusters become one, the older id.
    d.observe(accepted('bridge', { ...other, attachments: [hash('camp')] }, { ts: NOW - S, ip: '192.0.2.2', suspicious: false }), ctx);
    expect(d.index.clusterOf('a0')).toBe(b);
    await d.flush(store.db, NOW);
    expect(await store.db.selectFrom('clusters').select(['id', 'members', 'ips']).execute()).toEqual([{ id: b, members: 4, ips: 4 }]);
    const rows = await store.db.selectFrom('similarity_entries').select('cluster').execute();
    expect(new Set(rows.map((r) => Number(r.cluster)))).toEqual(new Set([b]));
  });

  it('takes the registrable domain of the envelope sender', () => {
    expect(senderDomainOf('a@mail.Example.co.uk')).toBe('example.co.uk');
    expect(senderDomainOf('')).toBe('');
  });
});
