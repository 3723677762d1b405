// The feedback loop end to end: attacks over real sockets from their own loopback addresses, the gateway's live
// refusals, the analyzer's policies with evidence, expiry, and policies kept across a restart.
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { TEST_STORE, freshPgSchema, startTestPostern, tempDir, until, type TestPostern } from '../harness/postern.ts';
import { simulateFlood, simulateHarvest, waitLifted, type SimTarget } from '../../src/trends/simulate.ts';
import { addPolicy, listPolicies } from '../../src/policy/admin.ts';
import { SimClient } from '../../src/trends/sim-client.ts';
import { findTrace, renderTrace } from '../../src/cli/trace.ts';

const KNOWN = ['alice@localhost', 'bob@localhost', 'carol@localhost'];
const BASE = `
[gateway]
domains = ["localhost"]
recipients = ${JSON.stringify(KNOWN)}
max_connections_per_ip = 500

[gateway.greet_pause]
unknown_ms = 0
suspicious_ms = 0

[trends]
poll_ms = 50
`;

let pt: TestPostern | undefined;
afterEach(async () => {
  await pt?.close();
  pt = undefined;
});

function target(p: TestPostern, attackerNet: string, legitNet = '127.0.2'): SimTarget {
  return { host: '127.0.0.1', port: p.port, domain: 'localhost', known: KNOWN, attackerNet, legitNet, legitSenders: 3, legitPauseMs: 20 };
}

/** The policies on `target`, once there is one. */
const policiesOn = (p: TestPostern, t: string) =>
  until(async () => {
    const l = (await listPolicies(p.app.store.db)).filter((x) => x.target === t);
    return l.length ? l : undefined;
  }, 5_000, `a policy on ${t}`);

async function rcptFrom(p: TestPostern, ip: string, to: string): Promise<string> {
  const c = await SimClient.connect('127.0.0.1', p.port, ip);
  await c.reply();
  await c.cmd('EHLO probe.example');
  await c.cmd('MAIL FROM:<probe@probe.example>');
  const r = await c.cmd(`RCPT TO:<${to}>`);
  c.quit();
  return r;
}

describe('directory harvest', () => {
  it('blocks one address within 20 unknown recipients, writes the policy with evidence, and spares legitimate senders', async () => {
    pt = await startTestPostern(BASE);
    const r = await simulateHarvest(target(pt, '127.0.3'), { distributed: false, maxRcpts: 200, after: 30, attacker: '127.0.3.66' });
    expect(r.blocked_after_ms).not.toBeNull();
    expect(r.unknown_revealed).toBeLessThanOrEqual(20);
    expect(r.unknown_revealed).toBe(15);
    expect(r.blocked_reply).toMatch(/^550 5\.7\.1/);
    expect(r.refused_after_block).toBe(30);
    expect(r.legit.sent).toBeGreaterThan(0);
    expect(r.legit.accepted).toBe(r.legit.sent);
    const db = pt.app.store.db;
    const [p] = await policiesOn(pt, '127.0.3.66');
    expect(p).toMatchObject({ target_kind: 'ip', action: 'block', source: 'analyzer:harvest' });
    expect(p.evidence).toMatchObject({ unknown: 15, window_s: 3600 });
    expect((p.evidence.sample_recipients as string[]).length).toBeGreaterThan(0);
    expect(p.expires_at! - Date.now()).toBeGreaterThan(3500_000);
    // A known recipient is refused too now, and the refusal names the policy (once the gateway's table has read it:
    // on PostgreSQL the analyzer's write and the gateway's reload are a moment apart).
    const gw = pt;
    await until(() => gw.app.policies.match({ ip: '127.0.3.66' }).some((x) => x.id === p.id), 5_000, 'the gateway to read the policy');
    expect(await rcptFrom(pt, '127.0.3.66', 'alice@localhost')).toMatch(/^550 5\.7\.1/);
    await pt.app.sink.flush();
    const ev = await db.selectFrom('events').select(['data', 'conn_id']).where('type', '=', 'smtp.rcpt.rejected').where('ip', '=', '127.0.3.66').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(JSON.parse(ev.data)).toMatchObject({ reason: 'policy', policy: p.id });
    // postern trace explains the refusal by the policy and its evidence.
    const text = renderTrace((await findTrace(pt.app.store, ev.conn_id!))!);
    expect(text).toContain(`by policy ${p.id}: directory harvest`);
    expect(text).toMatch(new RegExp(`policies\\n  ${p.id}  ip:127\\.0\\.3\\.66 block \\(analyzer:harvest\\)`));
    expect(text).toContain('"unknown":15');
    // The data matrix's metadata of the source.
    // Written every half second as the analyzer goes: wait for the row to have caught up with the harvest.
    const src = await until(
      async () => {
        const row = await db.selectFrom('source_stats').selectAll().where('kind', '=', 'ip').where('key', '=', '127.0.3.66').executeTakeFirst();
        return row && Number(row.unknown_recipients) >= 15 ? row : undefined;
      },
      5_000,
      'source stats',
    );
    expect(Number(src.unknown_recipients)).toBe(15);
  });

  it('catches a harvest spread over a /24 at two guesses per address at the network', async () => {
    pt = await startTestPostern(BASE);
    const r = await simulateHarvest(target(pt, '127.0.4'), { distributed: true, perIp: 2, after: 10 });
    expect(r.blocked_after_ms).not.toBeNull();
    // net_unknown is 30: fifteen addresses with two guesses each.
    expect(r.unknown_revealed).toBe(30);
    expect(r.addresses_used).toBeLessThan(30);
    expect(r.legit.accepted).toBe(r.legit.sent);
    const [p] = await policiesOn(pt, '127.0.4.0/24');
    expect(p).toMatchObject({ target_kind: 'cidr', action: 'block' });
    expect(Number(p.evidence.addresses)).toBeGreaterThanOrEqual(4);
    // A fresh address of that network is refused; one of the legitimate network is not.
    expect(await rcptFrom(pt, '127.0.4.200', 'bob@localhost')).toMatch(/^550 5\.7\.1/);
    expect(await rcptFrom(pt, '127.0.2.200', 'bob@localhost')).toMatch(/^250/);
  });
});

describe('live policies', () => {
  it('takes a new policy into account within a second and lets it expire on time', async () => {
    pt = await startTestPostern(BASE);
    expect(await rcptFrom(pt, '127.0.6.9', 'alice@localhost')).toMatch(/^250/);
    const p = await addPolicy(pt.app.store.db, { target_kind: 'ip', target: '127.0.6.9', action: 'block', reason: 'test', ttl_s: 3 });
    const t0 = Date.now();
    await until(async () => /^550/.test(await rcptFrom(pt!, '127.0.6.9', 'alice@localhost')), 1_500, 'the block');
    expect(Date.now() - t0).toBeLessThan(1_500);
    await until(async () => /^250/.test(await rcptFrom(pt!, '127.0.6.9', 'alice@localhost')), 5_000, 'the expiry');
    expect(Date.now()).toBeGreaterThanOrEqual(p.expires_at!);
  });

  it('lifts a harvest block when its policy expires', async () => {
    pt = await startTestPostern(BASE + '\n[trends.harvest]\nttl_s = 3\n');
    const t = target(pt, '127.0.10');
    const r = await simulateHarvest(t, { distributed: false, maxRcpts: 40, after: 5, attacker: '127.0.10.66' });
    expect(r.unknown_revealed).toBe(15);
    const [p] = await policiesOn(pt, '127.0.10.66');
    expect(await rcptFrom(pt, '127.0.10.66', 'alice@localhost')).toMatch(/^550 5\.7\.1/);
    const lifted = await waitLifted(t, '127.0.10.66', 10_000);
    expect(lifted).not.toBeNull();
    expect(Date.now()).toBeGreaterThanOrEqual(p.expires_at!);
    expect((await listPolicies(pt.app.store.db, { all: true })).find((x) => x.id === p.id)!.state).toBe('expired');
  });

  it('keeps active policies across a restart', async () => {
    const dir = tempDir();
    // Both starts must share one store: on PostgreSQL, one schema made here rather than one per start.
    const pgs = TEST_STORE === 'postgres' ? await freshPgSchema() : undefined;
    const toml = BASE + (pgs ? `\n[store]\nurl = ${JSON.stringify(pgs.url)}\n` : '');
    onTestFinished(() => pgs?.drop());
    pt = await startTestPostern(toml, { dir, store: 'sqlite' });
    await simulateHarvest(target(pt, '127.0.7'), { distributed: false, maxRcpts: 40, after: 5, attacker: '127.0.7.8' });
    await policiesOn(pt, '127.0.7.8');
    await pt.app.close();
    const restartedAt = Date.now();
    const again = await startTestPostern(toml, { dir, store: 'sqlite' });
    pt = again;
    expect(await rcptFrom(again, '127.0.7.8', 'alice@localhost')).toMatch(/^550 5\.7\.1/);
    expect(await rcptFrom(again, '127.0.7.9', 'alice@localhost')).toMatch(/^250/);
    // The restarted gateway knows the harvester from the data matrix, not from memory: its greeting class says so.
    await again.app.sink.flush();
    const classes = await again.app.store.db.selectFrom('events').select(['ip', 'data']).where('type', '=', 'smtp.connect').where('ts', '>=', restartedAt).execute();
    expect(Object.fromEntries(classes.map((e) => [e.ip, JSON.parse(e.data).class]))).toEqual({ '127.0.7.8': 'suspicious', '127.0.7.9': 'unknown' });
  });
});

describe('flood', () => {
  it('throttles a source far above its baseline to a few messages per window', async () => {
    pt = await startTestPostern(BASE + '\n[trends.flood]\nwindow_s = 30\nmin_messages = 20\nfactor = 10\n');
    // The thresholds are low for a short test (20 in 30 s), so the legitimate senders go at a sane pace below them.
    // Until 30 deferrals after the throttle: on a fast machine 240 messages could all be in before the analyzer,
    // which on PostgreSQL reads events a moment after they are stored, has written its policy.
    const r = await simulateFlood({ ...target(pt, '127.0.8'), legitPauseMs: 2_000 }, { messages: 2_000, attacker: '127.0.8.5', afterThrottle: 30 });
    expect(r.throttled_after_ms).not.toBeNull();
    expect(r.legit.sent).toBeGreaterThan(0);
    expect(r.legit.accepted).toBe(r.legit.sent);
    const [p] = await policiesOn(pt, '127.0.8.5');
    expect(p).toMatchObject({ action: 'throttle', source: 'analyzer:flood', params: { rate: 2, window_s: 30 } });
    // Once throttled, at most the policy's rate more gets through in the window; the rest is deferred, not refused.
    expect(r.accepted - r.accepted_before_throttle).toBeLessThanOrEqual(2);
    expect(r.sample_refusals).toEqual([]);
    expect(r.deferred).toBe(r.sent - r.accepted);
  });
});
