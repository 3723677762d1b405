// The loop under `postern start` with gateway workers: the primary's analyzer writes the policy and tells every
// worker over the cluster's IPC, so a new connection on any worker is refused at once.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PosternChild, freePort } from '../harness/child.ts';
import { tempDir, until } from '../harness/postern.ts';
import { writeFile } from '../harness/child.ts';
import { simulateHarvest } from '../../src/trends/simulate.ts';
import { SimClient } from '../../src/trends/sim-client.ts';
import { openStore } from '../../src/store/db.ts';
import { listPolicies } from '../../src/policy/admin.ts';

describe('the feedback loop with two gateway workers', () => {
  let child: PosternChild | undefined;
  afterAll(async () => child?.stop());

  it('blocks a harvest and applies the policy on every worker', async () => {
    const dir = tempDir();
    const port = await freePort();
    const conf = writeFile(
      path.join(dir, 'postern.toml'),
      `data_dir = "data"
[gateway]
listen = "127.0.0.1:${port}"
domains = ["localhost"]
recipients = ["alice@localhost", "bob@localhost"]
workers = 2
[gateway.greet_pause]
unknown_ms = 0
suspicious_ms = 0
[web]
enabled = false
[analysis.checks.auth]
enabled = false
[trends]
poll_ms = 50
[log]
level = "warn"
`,
    );
    child = await PosternChild.start(conf, 60_000);
    const r = await simulateHarvest(
      { host: '127.0.0.1', port, domain: 'localhost', known: ['alice@localhost'], attackerNet: '127.0.11', legitNet: '127.0.12', legitSenders: 2, legitPauseMs: 50 },
      { distributed: false, maxRcpts: 60, after: 5, attacker: '127.0.11.66' },
    );
    // One session, on one worker, whose in-process counters reach the threshold.
    expect(r.unknown_revealed).toBe(15);
    expect(r.legit.accepted).toBe(r.legit.sent);
    const store = await openStore({ url: '', dataDir: path.join(dir, 'data') });
    try {
      const policy = await until(async () => (await listPolicies(store.db)).find((p) => p.target === '127.0.11.66'), 10_000, 'the policy');
      expect(policy.source).toBe('analyzer:harvest');
    } finally {
      await store.close();
    }
    // Ten new connections spread over both workers: every one refused by the policy.
    const replies: string[] = [];
    for (let i = 0; i < 10; i++) {
      const c = await SimClient.connect('127.0.0.1', port, '127.0.11.66');
      await c.reply();
      await c.cmd('EHLO again.example');
      await c.cmd('MAIL FROM:<x@again.example>');
      replies.push((await c.cmd('RCPT TO:<alice@localhost>')).slice(0, 9));
      c.quit();
    }
    expect(replies).toEqual(Array(10).fill('550 5.7.1'));
  }, 120_000);
});
