// postern clusters and /api/v1/clusters against the store of a running Postern: list, a cluster's story, and an
// admin's mark that the running gateway's policy table picks up and that replaces the previous mark. The clusters,
// their members and the retroactive events are written as the outbreak detector writes them.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, startTestPostern, TEST_STORE, until, type TestPostern } from '../harness/postern.ts';
import { inProcess } from '../harness/cli.ts';
import { missing } from '../harness/services.ts';
import { addPolicy } from '../../src/policy/admin.ts';

const TOKEN = 'clusters-api-token-0123456789abcdef';
const T0 = Date.now() - 3_600_000;
const MIN = 60_000;
// As the index makes them: creation time in ms × 1024.
const A = T0 * 1024;
const B = A + 1024;
const W = A + 2048;

let p: TestPostern;
let dropPg: (() => Promise<void>) | undefined;
let cliConfig: string;

const run = (...a: string[]) => inProcess([...a, '--config', cliConfig]);

async function seed() {
  const db = p.app.store.db;
  const row = (id: number, state: string, last: number, subject: string) => ({
    id,
    first_seen: T0,
    last_seen: last,
    members: 3,
    ips: 3,
    sender_domains: 1,
    recipients: 4,
    suspicious: 3,
    state,
    declared_at: state === 'outbreak' ? T0 + 5 * MIN : null,
    declared_by: state === 'outbreak' ? 'outbreak-rule' : null,
    subject,
    updated_at: last,
  });
  await db.insertInto('clusters').values([row(A, 'outbreak', T0 + 30 * MIN, 'Your mailbox is full'), row(B, 'watching', T0 + 20 * MIN, 'Weekly digest'), row(W, 'watching', T0 + 10 * MIN, 'Hello')]).execute();
  const members: [string, string, [string, string, string][]][] = [
    ['QA1', '198.51.100.1', [['ann@example.com', 'pulled_back', 'downstream'], ['bob@example.com', 'quarantined', 'quarantine']]],
    ['QA2', '198.51.100.2', [['cat@example.com', 'delivered', 'downstream']]],
    ['QA3', '198.51.100.3', [['dan@example.com', 'delivered', 'outbound']]],
  ];
  for (const [i, [id, ip, rcpts]] of members.entries()) {
    const ts = T0 + (i + 1) * MIN;
    await db.insertInto('similarity_entries').values({ id, ts, cluster: A, fingerprint: '{}', facts: JSON.stringify({ ip, senderDomain: 'phish.example', recipients: rcpts.length, suspicious: true }) }).execute();
    await db
      .insertInto('messages')
      .values({ id, message_id: `<${id}@phish.example>`, received_at: ts, conn_id: null, client_ip: ip, helo: 'phish.example', mail_from: 'it@phish.example', size: 900, subject: 'Your mailbox is full', score: 4.5, symbols: '[]', verdict: '{}', status: 'done' })
      .execute();
    for (const [rcpt, status, route] of rcpts) {
      await db
        .insertInto('recipients')
        .values({ msg_id: id, rcpt, action: 'accept', reasons: '[]', status, route, deliver_to: rcpt, attempts: 1, next_attempt_at: 0, last_error: null, updated_at: ts })
        .execute();
    }
  }
  await addPolicy(db, { target_kind: 'cluster', target: String(A), action: 'quarantine', reason: 'outbreak: 3 copies from 3 sources in 5 min', source: 'analyzer:outbreak', ttl_s: 48 * 3600 });
  // As emit() writes them: the copy's queue id in the msg_id column.
  const ev = (type: string, ts: number, { msg_id, ...data }: Record<string, unknown>) => ({ ts, type, ip: null, conn_id: null, msg_id: (msg_id as string) ?? null, data: JSON.stringify(data) });
  await db
    .insertInto('events')
    .values([
      ev('similarity.held', T0 + 4 * MIN, { msg_id: 'QA9', cluster: A, cluster_members: 3, from: 'it@phish.example', rcpts: ['fay@example.com'], score: 4.5, hold_s: 600 }),
      ev('outbreak.declared', T0 + 5 * MIN, { cluster: A, policy: 'P1', action: 'quarantine', by: 'outbreak', reason: 'outbreak: 3 copies from 3 sources in 5 min' }),
      ev('retro.quarantined', T0 + 5 * MIN + 10, { cluster: A, msg_id: 'QA1', rcpt: 'bob@example.com' }),
      ev('retro.pulled_back', T0 + 5 * MIN + 20, { cluster: A, msg_id: 'QA1', rcpt: 'ann@example.com', outcome: 'moved', where: 'downstream' }),
      ev('retro.failed', T0 + 5 * MIN + 30, { cluster: A, msg_id: 'QA2', rcpt: 'cat@example.com', error: 'login refused' }),
      ev('retro.forwarded', T0 + 5 * MIN + 40, { cluster: A, msg_id: 'QA3', to: ['partner@other.example'], from: 'dan@example.com', subject: 'Fw: Your mailbox is full' }),
      ev('retro.notified', T0 + 5 * MIN + 45, { cluster: A, to: ['ann@example.com'] }),
      ev('outbound.outbreak_refused', T0 + 6 * MIN, { cluster: A, from: 'cat@example.com', rcpts: ['friend@other.example'], message_id: '<fw1@example.com>', reason: 'outbreak' }),
      ev('retro.quarantined', T0 + 5 * MIN + 50, { cluster: B, msg_id: 'QB1', rcpt: 'eve@example.com' }),
    ])
    .execute();
}

const skip = await missing('postgres');

beforeAll(async () => {
  if (skip) return;
  process.env.POSTERN_TEST_CLUSTERS_TOKEN = TOKEN;
  // The command line must reach the running Postern's store, so the PostgreSQL schema is made here and named to both.
  let storeSection = '';
  if (TEST_STORE === 'postgres') {
    const schema = await freshPgSchema();
    dropPg = schema.drop;
    storeSection = `[store]\nurl = ${JSON.stringify(schema.url)}\n`;
  }
  // The retroactive action stays off: the seeded declaration must not set the running Postern acting on its copies.
  p = await startTestPostern(`[web]\napi_token = { env = "POSTERN_TEST_CLUSTERS_TOKEN" }\n[outbreak]\nretro = false\n${storeSection}`, { store: 'sqlite' });
  cliConfig = path.join(p.dir, 'cli.toml');
  fs.writeFileSync(cliConfig, `data_dir = ${JSON.stringify(p.dir)}\n${storeSection}`);
  await seed();
});
afterAll(async () => {
  await p?.close();
  await dropPg?.();
});

async function adminPolicies(id: number) {
  return p.app.store.db.selectFrom('policies').select(['id', 'action', 'reason']).where('target_kind', '=', 'cluster').where('target', '=', String(id)).where('source', '=', 'admin').execute();
}

async function markedEvents(id: number) {
  const rows = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'cluster.marked').orderBy('id').execute();
  return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>).filter((d) => d.cluster === id);
}

describe.skipIf(skip)('postern clusters', () => {
  it('lists, filters by state, and refuses a state it does not know', async () => {
    const list = await run('clusters', 'list');
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+VERDICT\s+MEMBERS/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      [String(A), 'outbreak'],
      [String(B), 'watching'],
      [String(W), 'watching'],
    ]);
    expect(lines[1]).toContain('Your mailbox is full');

    const outbreaks = await run('clusters', 'list', '--state', 'outbreak', '--json');
    expect(JSON.parse(outbreaks.stdout).map((c: { id: number; verdict: string }) => [c.id, c.verdict])).toEqual([[A, 'outbreak']]);
    const bad = await run('clusters', 'list', '--state', 'burning');
    expect(bad.code).toBe(64);
    expect(bad.stderr.trim()).toBe('postern: --state "burning" is not one of watching, outbreak, safe');
  });

  it('tells one cluster\'s story: members, what was done to each copy, where copies went out to', async () => {
    const r = await run('clusters', 'show', String(A));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^cluster\\s+${A}$`, 'm'));
    expect(r.stdout).toMatch(/^state\s+outbreak \(declared .* by outbreak-rule\)$/m);
    expect(r.stdout).toMatch(/^verdict\s+outbreak \(policy P\w+: quarantine, analyzer:outbreak, expires in 2d\)$/m);
    expect(r.stdout).toContain('3 from 3 address(es), 1 sender domain(s), 4 recipient(s); 3 suspicious (100%)');
    expect(r.stdout).toContain('declared an outbreak by the outbreak rule (quarantine): outbreak: 3 copies from 3 sources in 5 min');
    expect(r.stdout).toContain('QA9 from it@phish.example: deferred for 600s');
    expect(r.stdout).toContain('told ann@example.com what was pulled back');
    expect(r.stdout).toContain('refused an outbound copy from cat@example.com to friend@other.example');
    expect(r.stdout).toContain('QA2 for cat@example.com: retro failed: login refused');
    const row = (q: string) => r.stdout.split('\n').find((l) => new RegExp(`Z  ${q}  `).test(l));
    const qa1 = row('QA1')!;
    expect(qa1).toContain('ann@example.com pulled_back → pulled back (moved, downstream); bob@example.com quarantined → quarantined');
    expect(row('QA3')).toContain('out to partner@other.example');
    expect(r.stdout).toMatch(/^forwarded to {2}1 outside address\(es\), which cannot be pulled back\n {2}partner@other\.example$/m);
    expect(r.stdout).not.toContain('eve@example.com');

    const json = JSON.parse((await run('clusters', 'show', String(A), '--json')).stdout);
    expect(json.members.map((m: { id: string }) => m.id)).toEqual(['QA1', 'QA2', 'QA3']);
    expect(json.forwardedTo).toEqual(['partner@other.example']);

    const none = await run('clusters', 'show', '999');
    expect([none.code, none.stderr.trim()]).toEqual([1, 'postern: no cluster 999']);
    const junk = await run('clusters', 'show', '12ab');
    expect(junk.code).toBe(64);
    expect(junk.stderr).toContain('cluster id "12ab" is not a whole number');
  });

  it('marks bad and then safe: one admin mark at a time, the running gateway sees it, cluster.marked is recorded', async () => {
    const bad = await run('clusters', 'mark', String(B), 'bad', '--reason', 'credential phish');
    expect(bad.code).toBe(0);
    const id = /policy (P\w+) \(quarantine\)/.exec(bad.stdout)![1];
    expect(await adminPolicies(B)).toEqual([{ id, action: 'quarantine', reason: 'credential phish' }]);
    // The gateway's table reloads from the store every second.
    await until(() => p.app.policies.forCluster(B).some((x) => x.id === id), 5000, 'the mark in the live table');

    const safe = await run('clusters', 'mark', String(B), 'safe');
    expect(safe.code).toBe(0);
    const [only] = await adminPolicies(B);
    expect(await adminPolicies(B)).toHaveLength(1);
    expect(only).toMatchObject({ action: 'allow', reason: expect.stringMatching(/^marked safe by cli:/) });
    await until(() => p.app.policies.forCluster(B).some((x) => x.id === only.id) && !p.app.policies.forCluster(B).some((x) => x.id === id), 5000, 'the new mark replacing the old');

    const shown = JSON.parse((await run('clusters', 'list', '--json')).stdout).find((c: { id: number }) => c.id === B);
    expect(shown).toMatchObject({ verdict: 'safe', policy: only.id });
    expect((await markedEvents(B)).map((d) => [d.verdict, d.policy])).toEqual([
      ['bad', id],
      ['safe', only.id],
    ]);

    for (const [argv, code, msg] of [
      [['mark', String(B), 'safe', '--action', 'block'], 64, '--action applies only to mark … bad'],
      [['mark', String(B), 'maybe'], 64, 'verdict "maybe" is not safe or bad'],
      [['mark', String(B), 'bad', '--action', 'delete'], 64, '--action "delete" is not one of quarantine, block'],
      [['mark', '999', 'bad'], 1, 'postern: no cluster 999'],
    ] as const) {
      const r = await run('clusters', ...argv);
      expect([r.code, r.stderr]).toEqual([code, expect.stringContaining(msg)]);
    }
    expect(await adminPolicies(B)).toHaveLength(1);
  });
});

/** A response whose JSON body the assertions read freely. */
type Res = Omit<Response, 'json'> & { json(): Promise<any> };
const api = (p2: string, init: RequestInit & { token?: string | null } = {}): Promise<Res> => {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? TOKEN}`);
  return fetch(`${p.webUrl}/api/v1/clusters${p2}`, { ...init, headers }) as Promise<Res>;
};
const mark = (id: number | string, body: unknown) => api(`/${id}/mark`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

describe.skipIf(skip)('clusters API', () => {
  it('answers 401 without the token or with a wrong one', async () => {
    for (const init of [{ token: null }, { token: 'wrong' }]) {
      const r = await api('/', init);
      expect(r.status).toBe(401);
      expect(await r.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
    for (const token of [null, 'wrong']) expect((await api(`/${W}/mark`, { method: 'POST', token })).status).toBe(401);
    expect(await adminPolicies(W)).toEqual([]);
  });

  it('lists and shows; 400 names the field, 404 the cluster', async () => {
    const list = await (await api('/?state=outbreak')).json();
    expect(list.items.map((c: { id: number; verdict: string | null }) => c.id)).toEqual([A]);
    expect((await (await api(`/?since=${T0 + 15 * MIN}&limit=5`)).json()).items.map((c: { id: number }) => c.id)).toEqual([A, B]);
    const one = await (await api(`/${A}`)).json();
    expect(one.cluster).toMatchObject({ id: A, state: 'outbreak', members: 3 });
    expect(one.members[0].recipients.map((r: { rcpt: string; retro: { type: string } | null }) => [r.rcpt, r.retro?.type])).toEqual([
      ['ann@example.com', 'retro.pulled_back'],
      ['bob@example.com', 'retro.quarantined'],
    ]);
    expect(one.forwardedTo).toEqual(['partner@other.example']);

    for (const [path2, field] of [['/?state=burning', 'state'], ['/?limit=0', 'limit'], ['/?colour=red', 'colour'], ['/abc', 'id'], [`/${A}?limit=x`, 'limit']]) {
      const r = await api(path2);
      expect(r.status).toBe(400);
      const body = await r.json();
      expect(body.error.code).toBe('bad_request');
      expect(body.error.message).toContain(field);
    }
    const none = await api('/999');
    expect(none.status).toBe(404);
    expect(await none.json()).toEqual({ error: { code: 'not_found', message: 'no cluster 999' } });
  });

  it('marks through POST: validated, replacing, and recorded as cluster.marked by api', async () => {
    const first = await mark(W, { verdict: 'bad', action: 'block', reason: 'malware wave' });
    expect(first.status).toBe(200);
    const a = await first.json();
    expect(a).toMatchObject({ cluster: W, verdict: 'bad', policy: { action: 'block', source: 'admin', reason: 'malware wave', target: String(W) } });
    const second = await (await mark(W, { verdict: 'safe' })).json();
    expect(second.policy).toMatchObject({ action: 'allow', reason: 'marked safe by api' });
    expect(await adminPolicies(W)).toEqual([{ id: second.policy.id, action: 'allow', reason: 'marked safe by api' }]);
    expect((await (await api(`/${W}`)).json()).cluster).toMatchObject({ verdict: 'safe', policy: second.policy.id });
    await until(async () => (await markedEvents(W)).length === 2, 5000, 'cluster.marked events');
    expect((await markedEvents(W)).map((d) => [d.verdict, d.action, d.by])).toEqual([
      ['bad', 'block', 'api'],
      ['safe', 'allow', 'api'],
    ]);

    for (const [body, field] of [
      [{ verdict: 'meh' }, 'verdict'],
      [{}, 'verdict'],
      [{ verdict: 'safe', action: 'block' }, 'action'],
      [{ verdict: 'bad', action: 'delete' }, 'action'],
      [{ verdict: 'bad', colour: 'red' }, 'colour'],
      [{ verdict: 'bad', reason: '' }, 'reason'],
    ] as const) {
      const r = await mark(W, body);
      expect(r.status).toBe(400);
      expect((await r.json()).error.message).toContain(`body ${field}`);
    }
    const bad = await api(`/${W}/mark`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect((await mark(999, { verdict: 'bad' })).status).toBe(404);
    expect(await adminPolicies(W)).toHaveLength(1);
  });
});
