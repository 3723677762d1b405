// Outbreaks over real sockets, the parts beside the campaign itself: the hold of a young cluster's suspicious copy
// (and its retry), a copy forwarded outside before the declaration (traced, and the next one refused), and an
// admin's "safe" that lets the cluster's later copies through.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { BASE, KNOWN, copy, declare, events, send, symbolsOf } from '../harness/outbreak.ts';
import { campaignVariant, ordinaryMessage } from '../../src/retro/simulate.ts';
import { markCluster } from '../../src/similarity/report.ts';

let pt: TestPostern | undefined;
let sink: Sink | undefined;
afterEach(async () => {
  await pt?.close();
  pt = undefined;
  await sink?.close();
  sink = undefined;
});

describe('outbreak: hold, forwarded copies, an admin mark', () => {
  it('holds the first suspicious copy of a new cluster, never an ordinary message, and takes the retry', async () => {
    pt = await startTestPostern(`${BASE}\n[outbreak]\nhold_s = 2\n`);
    const rcpt = KNOWN[0];
    const v = campaignVariant(0, rcpt, 'localhost');
    const held = await send(pt.port, '127.0.7.10', v.from, rcpt, v.body);
    expect(held.reply).toMatch(/^451 4\.7\.1 /);
    const heldEvents = await until(async () => (await events(pt as TestPostern, 'similarity.held')).at(0), 3_000, 'similarity.held');
    expect(heldEvents.data).toMatchObject({ from: v.from, rcpts: [rcpt], hold_s: 2 });
    for (let i = 0; i < 3; i++) {
      const m = ordinaryMessage(i, KNOWN[i + 1]);
      expect((await send(pt.port, `127.0.3.${10 + i}`, m.from, KNOWN[i + 1], m.body)).reply, m.subject).toMatch(/^250 /);
    }
    expect(await events(pt, 'similarity.held')).toHaveLength(1);
    // The sender retries after the hold: its copy now meets a cluster old enough to judge, of one source.
    await new Promise((r) => setTimeout(r, 2_100));
    const retry = await send(pt.port, '127.0.7.10', v.from, rcpt, v.body);
    expect(retry.reply).toMatch(/^250 /);
    expect(await symbolsOf(pt, retry.id as string)).not.toContain('OUTBREAK');
    expect(await events(pt, 'similarity.held')).toHaveLength(1);
    // The refusal carried the held copy's fingerprint: the analyzer put it and its retry in one cluster.
    const rejected = (await events(pt, 'smtp.data.rejected')).find((e) => e.msg_id === heldEvents.msg_id);
    expect(rejected?.data).toMatchObject({ reason: 'held', reply: '451 4.7.1', suspicious: true });
    const db = pt.app.store.db;
    const entries = await until(async () => {
      const rows = await db.selectFrom('similarity_entries').select(['id', 'cluster']).where('id', 'in', [heldEvents.msg_id as string, retry.id as string]).execute();
      return rows.length === 2 ? rows : undefined;
    }, 3_000, 'both copies indexed');
    expect(Number(entries[0].cluster)).toBe(Number(entries[1].cluster));
  });

  it('traces a copy forwarded outside before the declaration and refuses the next one', async () => {
    sink = await startSink();
    pt = await startTestPostern(`${BASE}\n[relay.smarthost]\nhost = "127.0.0.1"\nport = ${sink.port}\n\n[outbound]\nenabled = true\nnetworks = ["127.0.0.1/32"]\n`);
    const out = pt.app.outbound as { port: number };
    expect((await copy(pt, 0)).reply).toMatch(/^250 /);
    // Alice forwards it to someone outside; the relay hands it to the smarthost.
    const fwd = campaignVariant(1, 'partner@external.example', 'localhost');
    const sent = await send(out.port, '127.0.0.1', 'alice@localhost', 'partner@external.example', fwd.body);
    expect(sent.reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await until(() => sink?.messages.length === 1, 8_000, 'the forwarded copy at the smarthost');
    const db = pt.app.store.db;
    await until(async () => (await db.selectFrom('recipients').select('status').where('msg_id', '=', sent.id as string).executeTakeFirst())?.status === 'delivered', 5_000, 'delivered');
    expect(await db.selectFrom('recipients').select('route').where('msg_id', '=', sent.id as string).executeTakeFirst()).toEqual({ route: 'outbound' });

    const cluster = await declare(pt, 2);
    const forwarded = await until(async () => (await events(pt as TestPostern, 'retro.forwarded')).at(0), 5_000, 'retro.forwarded');
    expect(forwarded).toMatchObject({ msg_id: sent.id, data: { cluster, to: ['partner@external.example'], from: 'alice@localhost' } });
    const entry = await db.selectFrom('similarity_entries').select(['cluster', 'facts']).where('id', '=', sent.id as string).executeTakeFirstOrThrow();
    expect(Number(entry.cluster)).toBe(cluster);
    expect(JSON.parse(entry.facts)).toMatchObject({ outbound: true, recipients: 1 });

    // Once the gateway's table has the declaration, a new outbound copy does not leave.
    await until(() => pt?.app.policies.forCluster(cluster).some((p) => p.action !== 'allow'), 3_000, 'the declaration in the policy table');
    await new Promise((r) => setTimeout(r, 500));
    const again = campaignVariant(9, 'other@external.example', 'localhost');
    const refused = await send(out.port, '127.0.0.1', 'alice@localhost', 'other@external.example', again.body);
    expect(refused.reply).toMatch(/^550 5\.7\.1 /);
    const ev = await until(async () => (await events(pt as TestPostern, 'outbound.outbreak_refused')).at(0), 3_000, 'outbound.outbreak_refused');
    expect(ev.data).toMatchObject({ cluster, from: 'alice@localhost', rcpts: ['other@external.example'] });
    expect(sink.messages).toHaveLength(1);
  });

  it("lets the cluster's later copies through once an admin marks it safe", async () => {
    pt = await startTestPostern(BASE);
    const db = pt.app.store.db;
    const cluster = await declare(pt, 0);
    await until(async () => (await db.selectFrom('clusters').select('id').where('id', '=', cluster).executeTakeFirst()) !== undefined, 3_000, 'the cluster row');
    await markCluster(db, cluster, 'safe', { by: 'test' });
    await until(() => pt?.app.policies.forCluster(cluster).some((p) => p.action === 'allow'), 2_000, 'the mark in the policy table');
    const later = await copy(pt, 7);
    expect(later.reply).toMatch(/^250 /);
    const id = later.id as string;
    expect(await symbolsOf(pt, id)).not.toContain('OUTBREAK');
    expect(await symbolsOf(pt, id)).not.toContain('SIMILAR_CAMPAIGN');
    // Not held in line, and no sweep takes it back afterwards.
    await new Promise((r) => setTimeout(r, 1_200));
    const rows = await db.selectFrom('recipients').select('status').where('msg_id', '=', id).execute();
    expect(rows.map((r) => r.status)).not.toContain('quarantined');
    expect(rows.map((r) => r.status)).not.toContain('pulled_back');
    expect(await db.selectFrom('quarantine').select('id').where('msg_id', '=', id).execute()).toEqual([]);
  });
});
