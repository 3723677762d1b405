// Two gateway nodes sharing one store and Redis: a harvest split between them is caught at the same count as on one
// node (shared live counters), and the policy one node's analyzer writes reaches the other through the Redis bus.
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_STORE, freshPgSchema, startTestPostern, tempDir, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { SimClient, code } from '../../src/trends/sim-client.ts';
import { listPolicies } from '../../src/policy/admin.ts';

const PREFIX = `postern-test-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}:`;

describe.skipIf(await missing('redis', 'postgres'))(`two gateway nodes on Redis (${TEST_STORE})`, () => {
  const nodes: TestPostern[] = [];
  let dropPg: (() => Promise<void>) | undefined;
  afterAll(async () => {
    for (const n of nodes.reverse()) await n.close();
    await dropPg?.();
    const r = new Redis('redis://127.0.0.1:6379');
    const keys = await r.keys(`${PREFIX}*`);
    if (keys.length) await r.del(...keys);
    await r.quit();
  });

  it('counts a harvest across nodes and fans the policy out', async () => {
    let storeUrl: string;
    if (TEST_STORE === 'postgres') {
      const s = await freshPgSchema();
      dropPg = s.drop;
      storeUrl = s.url;
    } else storeUrl = `sqlite:${path.join(tempDir(), 'shared.db')}`;
    const toml = (analyzer: boolean) => `
[gateway]
domains = ["localhost"]
recipients = ["alice@localhost", "bob@localhost"]

[gateway.greet_pause]
unknown_ms = 0
suspicious_ms = 0

[store]
url = ${JSON.stringify(storeUrl)}

[matrix]
live = "redis"
redis_prefix = ${JSON.stringify(PREFIX)}

[trends]
enabled = ${analyzer}
poll_ms = 50
`;
    // Only node A runs an analyzer: one analyzer per store.
    nodes.push(await startTestPostern(toml(true), { store: 'sqlite' }));
    nodes.push(await startTestPostern(toml(false), { store: 'sqlite' }));
    const [a, b] = nodes;
    const ip = '127.0.9.66';
    const session = async (p: TestPostern) => {
      const c = await SimClient.connect('127.0.0.1', p.port, ip);
      await c.reply();
      await c.cmd('EHLO harvest.example');
      await c.cmd('MAIL FROM:<x@harvest.example>');
      return c;
    };
    const ca = await session(a);
    const cb = await session(b);
    const codes: string[] = [];
    for (let i = 0; i < 30; i++) codes.push(code(await (i % 2 ? cb : ca).cmd(`RCPT TO:<guess${i}@localhost>`)));
    ca.quit();
    cb.quit();
    // Fifteen unknown recipients in all, eight on one node and seven on the other, then refusals on both.
    expect(codes.slice(0, 15)).toEqual(Array(15).fill('550 5.1.1'));
    expect(codes.slice(15)).toEqual(Array(15).fill('550 5.7.1'));
    const policy = await until(async () => (await listPolicies(a.app.store.db)).find((p) => p.target === ip), 5_000, 'the policy');
    // Node B reads the policy when the bus announces it, well within a second of its writing.
    await until(() => b.app.policies.match({ ip }).some((p) => p.id === policy.id), 1_000, 'node B to apply the policy');
    const c = await session(b);
    const r = await c.cmd('RCPT TO:<alice@localhost>');
    c.quit();
    expect(r).toMatch(/^550 5\.7\.1/);
  });
});
