// When the analyzer writes what it derived: findings at once, the metadata and the cursor together and only when due
// (or on drain and stop), through Kysely or the SQLite handle with the same rows; a crash between writes derives
// nothing twice.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.ts';
import { silentLogger } from '../core/log.ts';
import { openStore, type StoreDb } from '../store/db.ts';
import { EventSink } from '../matrix/sink.ts';
import { listPolicies } from '../policy/admin.ts';
import { Analyzer } from './analyzer.ts';
import type { MatrixEvent } from './detector.ts';
import { SourceStats } from './source-stats.ts';

let dirs: string[] = [];
let stores: StoreDb[] = [];

async function fresh(): Promise<StoreDb> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-analyzer-save-'));
  const s = await openStore({ url: '', dataDir: dir });
  dirs.push(dir);
  stores.push(s);
  return s;
}

let store: StoreDb;
beforeEach(async () => {
  store = await fresh();
});
afterEach(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
  stores = [];
});

const config = configSchema.parse({});
const analyzer = (metadataMs: number, s = store) => new Analyzer({ db: s.db, dialect: 'sqlite', sqlite: s.sqlite, config, log: silentLogger, metadataMs });

/** Stores n "unknown recipient" refusals from ip, numbered from `from`. */
async function unknown(ip: string, from: number, n: number): Promise<void> {
  const sink = new EventSink(store, silentLogger);
  for (let i = from; i < from + n; i++) {
    sink.push({ type: 'smtp.rcpt.rejected', ts: Date.now(), ip, conn_id: null, msg_id: null, data: { rcpt: `guess${i}@example.org`, from: 'x@spam.example', reason: 'unknown_recipient' } });
  }
  await sink.flush();
}

const stats = (ip: string) => store.db.selectFrom('source_stats').selectAll().where('kind', '=', 'ip').where('key', '=', ip).executeTakeFirst();
const cursor = async () => Number((await store.db.selectFrom('analyzer_state').selectAll().executeTakeFirst())?.last_event_id ?? 0);

describe('deferred metadata', () => {
  it('writes findings at once, holds metadata and cursor until due, and writes them on stop', async () => {
    const a = analyzer(1e9);
    await unknown('198.51.100.70', 0, 15);
    expect(await a.step()).toBe(15);
    // The harvest finding is a policy already; the metadata and the cursor that covers it are not written yet.
    expect((await listPolicies(store.db)).map((p) => p.evidence.unknown)).toEqual([15]);
    expect(await stats('198.51.100.70')).toBeUndefined();
    expect(await cursor()).toBe(0);
    await unknown('198.51.100.70', 15, 3);
    expect(await a.step()).toBe(3);
    await a.stop();
    expect(Number((await stats('198.51.100.70'))?.unknown_recipients)).toBe(18);
    expect(await cursor()).toBe(a.stats.cursor);
  });

  it('writes metadata and cursor with the step once the interval has passed', async () => {
    const a = analyzer(0);
    await unknown('198.51.100.71', 0, 4);
    await a.step();
    expect(Number((await stats('198.51.100.71'))?.unknown_recipients)).toBe(4);
    expect(await cursor()).toBe(a.stats.cursor);
  });

  it('after a crash between writes, re-derives exactly the events the stored cursor does not cover', async () => {
    const a = analyzer(1e9);
    await unknown('198.51.100.72', 0, 10);
    await a.drain();
    expect(await cursor()).toBe(10);
    await unknown('198.51.100.72', 10, 5);
    await a.step();
    // a dies here: five events analysed, their metadata and cursor not written.
    expect(Number((await stats('198.51.100.72'))?.unknown_recipients)).toBe(10);
    const b = analyzer(1e9);
    await b.start(60_000);
    await b.stop();
    expect(Number((await stats('198.51.100.72'))?.unknown_recipients)).toBe(15);
    expect(await cursor()).toBe(15);
    // The finding the five completed was written by a, and b derived the same one again (refreshing, not adding).
    expect((await listPolicies(store.db)).map((p) => p.evidence.unknown)).toEqual([15]);
  });

  it('keeps the deltas of a failed write for the next one and never reads an event twice', async () => {
    const a = analyzer(0);
    await unknown('198.51.100.73', 0, 6);
    await store.db.schema.alterTable('source_stats').renameTo('source_stats_away').execute();
    await expect(a.step()).rejects.toThrow(/source_stats/);
    expect(await cursor()).toBe(0);
    await store.db.schema.alterTable('source_stats_away').renameTo('source_stats').execute();
    await unknown('198.51.100.73', 6, 2);
    expect(await a.step()).toBe(2);
    expect(Number((await stats('198.51.100.73'))?.unknown_recipients)).toBe(8);
    expect(await cursor()).toBe(8);
  });
});

describe('SourceStats on the SQLite handle', () => {
  it('writes the same rows as the Kysely flush, merging into stored rows', async () => {
    const other = await fresh();
    let id = 0;
    const ev = (type: string, ts: number, ip: string, data: Record<string, unknown>, conn_id: string | null = null): MatrixEvent => ({ id: ++id, ts, type, ip, conn_id, msg_id: `M${id}`, data });
    const batches: MatrixEvent[][] = [
      [
        ev('smtp.connect', 2_000, '198.51.100.1', {}),
        ev('smtp.helo', 2_000, '198.51.100.1', { helo: 'MX.Example.NET' }, 'C1'),
        ev('message.accepted', 2_500, '198.51.100.1', { from: 'Ann@Example.NET', score: 3.3, recipients: [{ action: 'accept' }, { action: 'quarantine' }] }, 'C1'),
      ],
      [
        ev('smtp.connect', 1_000, '198.51.100.1', {}),
        ev('smtp.rcpt.rejected', 3_000, '198.51.100.2', { from: 'ann@example.net', reason: 'unknown_recipient' }),
        ev('message.accepted', 4_000, '198.51.100.1', { from: 'ann@example.net', score: -1.7, recipients: [{ action: 'reject' }, { action: 'quarantine' }] }, 'C1'),
        ev('smtp.protocol_error', 4_500, '198.51.100.3', {}),
      ],
    ];
    const viaKysely = new SourceStats();
    const viaHandle = new SourceStats();
    for (const [i, batch] of batches.entries()) {
      for (const e of batch) {
        viaKysely.observe(e);
        viaHandle.observe(e);
      }
      await viaKysely.flush(store.db, 'sqlite', { id: i + 1, now: 5 });
      viaHandle.flushSqlite(other.sqlite!, { id: i + 1, now: 5 });
    }
    const rows = (s: StoreDb) => s.db.selectFrom('source_stats').selectAll().orderBy('kind').orderBy('key').execute();
    const written = await rows(other);
    expect(written).toEqual(await rows(store));
    expect(written.find((r) => r.kind === 'ip' && r.key === '198.51.100.1')).toMatchObject({
      connections: 2, messages: 2, first_seen: 1_000, last_seen: 4_000, score_hist: '{"2-5":1,"<0":1}', actions: '{"accept":1,"quarantine":2,"reject":1}',
    });
    expect(await other.db.selectFrom('analyzer_state').selectAll().execute()).toEqual(await store.db.selectFrom('analyzer_state').selectAll().execute());
  });

  it('keeps its deltas when the write fails', async () => {
    const s = new SourceStats();
    s.observe({ id: 1, ts: 1, type: 'smtp.connect', ip: '198.51.100.9', conn_id: null, msg_id: null, data: {} });
    store.sqlite!.exec('alter table source_stats rename to source_stats_away');
    expect(() => s.flushSqlite(store.sqlite!, { id: 1, now: 1 })).toThrow(/source_stats/);
    expect(s.pending).toBe(2);
    store.sqlite!.exec('alter table source_stats_away rename to source_stats');
    expect(s.flushSqlite(store.sqlite!, { id: 1, now: 1 })).toBe(2);
    expect(await cursor()).toBe(1);
  });
});

describe('SourceStats memory of messages', () => {
  it('forgets the oldest of more than 50,000 messages first, and keeps the place of one seen again', async () => {
    const s = new SourceStats();
    const msg = (id: number, type: string, msg_id: string, data: Record<string, unknown>, ip: string | null = null): MatrixEvent => ({ id, ts: id, type, ip, conn_id: null, msg_id, data });
    // M0 and M1 first; M0 again (its place stays); then 49,999 more: M0, the oldest, is forgotten, M1 is not.
    s.observe(msg(1, 'message.accepted', 'M0', { from: 'a@old.example' }, '198.51.100.1'));
    s.observe(msg(2, 'message.accepted', 'M1', { from: 'b@kept.example' }, '198.51.100.2'));
    s.observe(msg(3, 'message.accepted', 'M0', { from: 'a@old.example' }, '198.51.100.1'));
    for (let i = 2; i <= 50_000; i++) s.observe(msg(3 + i, 'message.accepted', `M${i}`, {}));
    s.observe(msg(60_000, 'relay.delivered', 'M0', { rcpts: ['x@example.org'] }));
    s.observe(msg(60_001, 'relay.delivered', 'M1', { rcpts: ['x@example.org'] }));
    s.flushSqlite(store.sqlite!);
    const delivered = async (kind: string, key: string) =>
      Number((await store.db.selectFrom('source_stats').select('delivered').where('kind', '=', kind).where('key', '=', key).executeTakeFirst())?.delivered);
    expect(await delivered('sender_domain', 'old.example')).toBe(0);
    expect(await delivered('sender_domain', 'kept.example')).toBe(1);
    expect(await delivered('ip', '198.51.100.2')).toBe(1);
  });
});
