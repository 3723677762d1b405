// SourceStats over a real store: a flush of more deltas than one statement holds (every statement size used), merged
// into the rows an earlier flush wrote, with counters added, first/last seen widened and the JSON histograms summed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openStore, type StoreDb } from '../store/db.ts';
import type { MatrixEvent } from './detector.ts';
import { SourceStats } from './source-stats.ts';

let dir: string;
let store: StoreDb;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-source-stats-'));
  store = await openStore({ url: '', dataDir: dir });
});
afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let id = 0;
const ev = (type: string, ts: number, ip: string, data: Record<string, unknown> = {}, conn_id: string | null = null): MatrixEvent => ({
  id: ++id, ts, type, ip, conn_id, msg_id: null, data,
});
/** 627 addresses: 500 + 100 + 20 + 5 + 1 + 1 rows, so one flush runs every statement size. */
const ips = Array.from({ length: 627 }, (_, i) => `198.51.${i >> 8}.${i & 255}`);
const row = (kind: string, key: string) => store.db.selectFrom('source_stats').selectAll().where('kind', '=', kind).where('key', '=', key).executeTakeFirstOrThrow();

it('writes every delta of a large batch and merges a later batch into the stored rows', async () => {
  const s = new SourceStats();
  for (const ip of ips) s.observe(ev('smtp.connect', 2_000, ip));
  s.observe(ev('message.accepted', 2_500, ips[626], { from: 'Ann@Example.NET', score: 3, recipients: [{ action: 'accept' }, { action: 'quarantine' }] }));
  expect(s.pending).toBe(627 + 3 + 2); // addresses, networks, sender and sender domain
  expect(await s.flush(store.db, 'sqlite')).toBe(632);
  expect(s.pending).toBe(0);
  expect(Number((await store.db.selectFrom('source_stats').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)).toBe(632);

  for (const ip of [ips[0], ips[626]]) s.observe(ev('smtp.connect', 1_000, ip));
  s.observe(ev('smtp.helo', 3_000, ips[626], { helo: 'MX.Example.NET' }, 'C1'));
  s.observe(ev('smtp.rcpt.rejected', 3_000, ips[626], { from: 'ann@example.net', reason: 'unknown_recipient' }, 'C1'));
  s.observe(ev('message.accepted', 4_000, ips[626], { from: 'ann@example.net', score: 20, recipients: [{ action: 'quarantine' }] }, 'C1'));
  await s.flush(store.db, 'sqlite');

  expect(await row('ip', ips[0])).toMatchObject({ connections: 2, first_seen: 1_000, last_seen: 2_000, score_hist: '{}', actions: '{}' });
  expect(await row('ip', ips[626])).toMatchObject({
    connections: 2, messages: 2, recipients: 1, unknown_recipients: 1, refused: 1, quarantined: 2, score_sum: 23, score_n: 2,
    first_seen: 1_000, last_seen: 4_000, score_hist: '{"2-5":1,">=15":1}', actions: '{"accept":1,"quarantine":2}',
  });
  expect(await row('net', '198.51.2.0/24')).toMatchObject({ connections: 116, messages: 2 });
  expect(await row('sender_domain', 'example.net')).toMatchObject({ messages: 2, recipients: 1 });
  expect(await row('helo', 'mx.example.net')).toMatchObject({ connections: 1, recipients: 1, messages: 1 });
});
