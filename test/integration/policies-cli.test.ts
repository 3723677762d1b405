// postern policies and postern sources as an admin runs them, against the store a running Postern reads.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { BIN, writeFile } from '../harness/child.ts';
import { freshPgSchema, tempDir, TEST_STORE } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { openStore, type StoreDb } from '../../src/store/db.ts';
import { PolicyTable } from '../../src/policy/live.ts';
import { inProcess } from '../harness/cli.ts';

/** Runs one command through the real binary (a fresh Node process compiling TypeScript: seconds on a busy machine). */
function bin(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}


describe.skipIf(await missing('postgres'))('postern policies / sources', () => {
  let dir: string;
  let store: StoreDb;
  let dropPg: (() => Promise<void>) | undefined;
  const run = (...a: string[]) => inProcess([...a, '--config', path.join(dir, 'postern.toml')]);

  beforeAll(async () => {
    dir = tempDir();
    let url = '';
    if (TEST_STORE === 'postgres') {
      const schema = await freshPgSchema();
      url = schema.url;
      dropPg = schema.drop;
    }
    writeFile(path.join(dir, 'postern.toml'), `data_dir = ${JSON.stringify(path.join(dir, 'data'))}\n${url ? `[store]\nurl = ${JSON.stringify(url)}\n` : ''}`);
    store = await openStore({ url, dataDir: path.join(dir, 'data') });
  });
  afterAll(async () => {
    await store?.close();
    await dropPg?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('adds, lists, shows, pins, extends and removes; the gateway\'s table sees the change', async () => {
    // Once through the installed command, for its exit code and output; the rest in this process.
    const [bad, badTtl] = await Promise.all([bin(['policies', 'add', 'ip', '300.1.1.1', 'block'], dir), run('policies', 'add', 'ip', '192.0.2.1', 'block', '--ttl', 'soon')]);
    const [added, allowed] = await Promise.all([
      run('policies', 'add', 'cidr', '198.51.100.77/24', 'block', '--ttl', '1h', '--reason', 'harvest by hand'),
      run('policies', 'allow', 'sender', 'Boss@Example.com'),
    ]);
    expect(bad.code).toBe(64);
    expect(bad.stderr.trim()).toBe('postern: target "300.1.1.1" is not an IP address');
    expect(badTtl.code).toBe(64);
    expect(badTtl.stderr).toContain('--ttl "soon" is not a duration');
    expect(added.code).toBe(0);
    const id = added.stdout.trim();
    expect(id).toMatch(/^P[0-9A-Z]{20}$/);
    expect(allowed.code).toBe(0);
    const allowId = allowed.stdout.trim();

    const live = new PolicyTable(store.db);
    await live.load();
    expect(live.match({ ip: '::ffff:198.51.100.200' }).map((p) => [p.id, p.action])).toEqual([[id, 'block']]);
    expect(live.match({ sender: 'boss@example.com' }).map((p) => [p.id, p.action])).toEqual([[allowId, 'allow']]);

    const [list, show] = await Promise.all([run('policies', 'list'), run('policies', 'show', id, '--json')]);
    expect(list.code).toBe(0);
    const line = list.stdout.split('\n').find((l) => l.startsWith(id));
    expect(line).toMatch(/cidr:198\.51\.100\.0\/24\s+block\s+in (59|60)m\s+admin\s+harvest by hand/);
    expect(list.stdout).toMatch(new RegExp(`${allowId}\\s+sender:boss@example\\.com\\s+allow\\s+never`));
    expect(JSON.parse(show.stdout)).toMatchObject({ id, target_kind: 'cidr', target: '198.51.100.0/24', action: 'block', state: 'active', pinned: false, source: 'admin' });
    expect((await run('policies', 'pin', allowId)).stdout).toContain(`${allowId} pinned`);

    const [extendPinned, extend] = await Promise.all([run('policies', 'extend', allowId, '--ttl', '1h'), run('policies', 'extend', id, '--ttl', '7d')]);
    expect(extendPinned.code).toBe(1);
    expect(extendPinned.stderr).toContain('is pinned');
    expect(extend.stdout.trim()).toMatch(new RegExp(`^${id} expires in 7d$`));
    const json = JSON.parse((await run('policies', 'list', '--json')).stdout) as { id: string; pinned: boolean; expires_at: number | null }[];
    expect(json.find((p) => p.id === allowId)).toMatchObject({ pinned: true, expires_at: null });
    expect(json.find((p) => p.id === id)!.expires_at).toBeGreaterThan(Date.now() + 6 * 86_400_000);

    const [removed, gone] = await Promise.all([run('policies', 'remove', id), run('policies', 'show', 'Pnothing')]);
    expect(removed.stdout.trim()).toBe(`${id} removed`);
    expect(gone.code).toBe(1);
    await live.load();
    expect(live.match({ ip: '198.51.100.200' })).toEqual([]);
  }, 120_000);

  it('shows a source with its ratios and the policies that apply to it, and lists sources by order', async () => {
    const now = Date.now();
    const base = { first_seen: now - 86_400_000, connections: 4, messages: 6, refused: 1, quarantined: 1, delivered: 5, protocol_errors: 2, score_hist: '{"0-2":5,"8-15":1}', actions: '{"accept":5,"quarantine":1}' };
    await store.db
      .insertInto('source_stats')
      .values([
        { ...base, kind: 'ip', key: '203.0.113.9', last_seen: now - 60_000, recipients: 40, unknown_recipients: 30, score_sum: 12, score_n: 6 },
        { ...base, kind: 'ip', key: '203.0.113.10', last_seen: now - 1000, recipients: 10, unknown_recipients: 1, score_sum: 0, score_n: 0 },
      ])
      .execute();
    const policy = (await run('policies', 'add', 'cidr', '203.0.113.0/24', 'tarpit', '--delay', '10s', '--ttl', '30m')).stdout.trim();
    const [show, list] = await Promise.all([run('sources', 'show', 'ip', '203.0.113.9'), run('sources', 'list', '--order', 'unknown', '--json')]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('recipients  40, unknown 30 (75%)');
    expect(show.stdout).toContain('score avg   2.00 over 6');
    expect(show.stdout).toMatch(new RegExp(`${policy}\\s+cidr:203\\.0\\.113\\.0/24\\s+tarpit\\s+in 30m`));
    expect((JSON.parse(list.stdout) as { key: string }[]).map((s) => s.key)).toEqual(['203.0.113.9', '203.0.113.10']);
    const [bad, none] = await Promise.all([run('sources', 'show', 'asn', '64500'), run('sources', 'show', 'ip', '198.51.100.1')]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('kind "asn" is not one of');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no record of ip 198.51.100.1');
  }, 120_000);
});
