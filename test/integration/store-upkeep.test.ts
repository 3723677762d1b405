// Retention: events past their type's retention are rolled up per hour and deleted, finished messages older than
// store.event_retention_days purged, in batches, on the store the project selects; open and quarantined messages
// stay; old roll-ups and long-expired policies go. `postern store purge` runs the same purge now.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshPgSchema, tempDir, TEST_STORE } from '../harness/postern.ts';
import { writeFile } from '../harness/child.ts';
import { inProcess } from '../harness/cli.ts';
import { openStore, type StoreDb } from '../../src/store/db.ts';
import { Upkeep, type RetentionSettings } from '../../src/store/upkeep.ts';
import { silentLogger } from '../../src/core/log.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const settings = (s: Partial<RetentionSettings> = {}): RetentionSettings => ({
  event_retention_days: 30,
  event_retention_by_type: {},
  rollup_retention_days: 400,
  ...s,
});
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function store(): Promise<{ s: StoreDb; dir: string; url: string }> {
  const dir = tempDir('postern-upkeep-');
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  let url = '';
  if (TEST_STORE === 'postgres') {
    const pg = await freshPgSchema();
    cleanup.push(() => pg.drop().catch(() => undefined));
    url = pg.url;
  }
  const s = await openStore({ url, dataDir: dir });
  return { s, dir, url };
}

async function seed(s: StoreDb, now: number): Promise<void> {
  const msg = (id: string, ageDays: number, status: string) => ({
    id,
    message_id: `<${id}@example.org>`,
    received_at: now - ageDays * DAY,
    conn_id: 'C1',
    client_ip: '192.0.2.1',
    helo: 'mx.example.org',
    mail_from: 'a@example.org',
    size: 100,
    subject: 's',
    score: 0,
    symbols: '[]',
    verdict: '{}',
    status,
  });
  const rcpt = (msg_id: string, status: string) => ({
    msg_id,
    rcpt: 'u@localhost',
    action: 'accept',
    reasons: '[]',
    status,
    route: 'downstream',
    deliver_to: 'u@localhost',
    attempts: 1,
    next_attempt_at: now,
    last_error: null,
    updated_at: now,
  });
  await s.db
    .insertInto('messages')
    .values([msg('OLDDONE', 40, 'done'), msg('NEWDONE', 5, 'done'), msg('OLDOPEN', 40, 'queued'), msg('OLDQUAR', 40, 'done')])
    .execute();
  await s.db
    .insertInto('recipients')
    .values([rcpt('OLDDONE', 'delivered'), rcpt('NEWDONE', 'delivered'), rcpt('OLDOPEN', 'deferred'), rcpt('OLDQUAR', 'quarantined')])
    .execute();
  await s.db
    .insertInto('quarantine')
    .values({ id: 'Q1', msg_id: 'OLDQUAR', rcpt: 'u@localhost', blob: 'b', reason: 'score', score: 9, symbols: '[]', sender: 'a@example.org', subject: 's', size: 1, created_at: now - 40 * DAY, expires_at: now + DAY, status: 'held', policy: '[]', acted_at: null, acted_by: null })
    .execute();
  // 4,500 old events (more than two batches) and 3 recent ones.
  const old = Array.from({ length: 4500 }, (_, i) => ({ ts: now - 31 * DAY - i, type: 'smtp.connect', ip: '192.0.2.1', conn_id: 'C1', msg_id: null, data: '{}' }));
  for (let i = 0; i < old.length; i += 500) await s.db.insertInto('events').values(old.slice(i, i + 500)).execute();
  await s.db
    .insertInto('events')
    .values([0, 1, 2].map((i) => ({ ts: now - i * DAY, type: 'smtp.connect', ip: '192.0.2.1', conn_id: 'C2', msg_id: null, data: '{}' })))
    .execute();
}

describe(`store upkeep (${TEST_STORE})`, () => {
  it('purges old events and finished messages in batches; keeps open, quarantined and recent ones', async () => {
    const { s } = await store();
    try {
      const now = Date.now();
      await seed(s, now);
      const purged: unknown[] = [];
      const up = new Upkeep(s.db, { store: settings(), log: silentLogger, onPurged: (r) => purged.push(r) });
      expect(await up.purge(now)).toMatchObject({ events: 4500, classes: [{ match: '*', days: 30, events: 4500 }], messages: 1, recipients: 1 });
      expect(purged).toHaveLength(1);
      const ids = (await s.db.selectFrom('messages').select('id').orderBy('id').execute()).map((r) => r.id);
      expect(ids).toEqual(['NEWDONE', 'OLDOPEN', 'OLDQUAR']);
      expect((await s.db.selectFrom('recipients').select('msg_id').orderBy('msg_id').execute()).map((r) => r.msg_id)).toEqual(['NEWDONE', 'OLDOPEN', 'OLDQUAR']);
      expect(await s.db.selectFrom('events').select('conn_id').execute()).toEqual([{ conn_id: 'C2' }, { conn_id: 'C2' }, { conn_id: 'C2' }]);
      // A second run finds nothing and reports nothing.
      expect(await up.purge(now)).toEqual({ events: 0, classes: [{ match: '*', days: 30, events: 0 }], rolledUp: 0, rollupsDeleted: 0, policies: 0, messages: 0, recipients: 0 });
      expect(purged).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it('postern store purge deletes what is past a retention given on the command line', async () => {
    const { s, dir, url } = await store();
    const now = Date.now();
    try {
      await seed(s, now);
    } finally {
      await s.close();
    }
    const conf = writeFile(path.join(dir, 'postern.toml'), `data_dir = "."\n[store]\nurl = ${JSON.stringify(url)}\nevent_retention_days = 90\nevent_retention_by_type = {}\n`);
    const kept = await inProcess(['store', 'purge', '--config', conf, '--json']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(JSON.parse(kept.stdout)).toMatchObject({ older_than_days: 90, events: 0, messages: 0, recipients: 0 });
    const r = await inProcess(['store', 'purge', '--config', conf, '--older-than-days', '3']);
    expect(r.code, r.stderr).toBe(0);
    // NEWDONE (5 days) goes too at 3 days; the events of 0, 1 and 2 days ago stay.
    expect(r.stdout).toContain('older than 3 day(s): 4500 event(s), 2 message(s) and 2 recipient row(s) deleted');
    const bad = await inProcess(['store', 'purge', '--config', conf, '--older-than-days', 'soon']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('--older-than-days must be a number of days');
  }, 120_000);

  it('rolls up and deletes each type past its own retention; the longest matching prefix wins', async () => {
    const { s } = await store();
    try {
      const now = Date.now();
      const h = hourOf(now - 10 * DAY);
      await events(s, [
        ...['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1', null].map((ip, i) => ev('smtp.connect', h + i, ip)),
        ev('smtp.connect', h + HOUR + 5, '192.0.2.4'),
        ev('smtp.connect', h + HOUR + 6, '192.0.2.4'),
        ev('smtp.connect', now - DAY, '192.0.2.9'),
        ev('smtp.helo', h, '192.0.2.1'),
        ev('smtp.helo', h - 15 * DAY, '192.0.2.1'),
        ev('message.accepted', h, '192.0.2.1'),
        ev('message.accepted', h - 25 * DAY, '192.0.2.5'),
        ev('legacy.type', h - 25 * DAY, '192.0.2.6'),
      ]);
      const up = new Upkeep(s.db, { store: settings({ event_retention_by_type: { smtp: 20, 'smtp.connect': 7 } }), log: silentLogger });
      const r = await up.purge(now);
      expect(r.classes).toEqual([
        { match: 'smtp.connect', days: 7, events: 7 },
        { match: 'smtp', days: 20, events: 1 },
        { match: '*', days: 30, events: 2 },
      ]);
      expect(r).toMatchObject({ events: 10, rolledUp: 5 });
      const left = await s.db.selectFrom('events').select(['type', 'ts']).orderBy('ts').orderBy('type').execute();
      expect(left).toEqual([
        { type: 'message.accepted', ts: h },
        { type: 'smtp.helo', ts: h },
        { type: 'smtp.connect', ts: now - DAY },
      ]);
      expect(await rollups(s)).toEqual([
        { hour: h - 25 * DAY, type: 'legacy.type', count: 1, ips: 1 },
        { hour: h - 25 * DAY, type: 'message.accepted', count: 1, ips: 1 },
        { hour: h - 15 * DAY, type: 'smtp.helo', count: 1, ips: 1 },
        { hour: h, type: 'smtp.connect', count: 5, ips: 3 },
        { hour: h + HOUR, type: 'smtp.connect', count: 2, ips: 1 },
      ]);
    } finally {
      await s.close();
    }
  });

  it('a later purge adds to an hour already rolled up; an hour is counted whole across batches', async () => {
    const { s } = await store();
    try {
      // The 7-day cutoff falls in the middle of hour h: the first run takes its first half, the next run the rest.
      const now = hourOf(Date.now()) + HOUR / 2;
      const h = hourOf(now - 7 * DAY);
      const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      // 1,500 events of one hour and 1,000 of the next: together more than one batch of 2,000.
      await events(s, [
        ...Array.from({ length: 1500 }, (_, i) => ev('smtp.connect', h - 2 * HOUR + i, ip(i))),
        ...Array.from({ length: 1000 }, (_, i) => ev('smtp.connect', h - HOUR + i, ip(10_000 + i))),
        ...['192.0.2.1', '192.0.2.2', '192.0.2.3'].map((a, i) => ev('smtp.connect', h + 60_000 + i, a)),
        ev('smtp.connect', h + 40 * 60_000, '192.0.2.1'),
        ev('smtp.connect', h + 41 * 60_000, '192.0.2.7'),
      ]);
      const up = new Upkeep(s.db, { store: settings({ event_retention_by_type: { 'smtp.connect': 7 } }), log: silentLogger });
      expect(await up.purge(now)).toMatchObject({ events: 2503, rolledUp: 3 });
      expect(await rollups(s)).toEqual([
        { hour: h - 2 * HOUR, type: 'smtp.connect', count: 1500, ips: 1500 },
        { hour: h - HOUR, type: 'smtp.connect', count: 1000, ips: 1000 },
        { hour: h, type: 'smtp.connect', count: 3, ips: 3 },
      ]);
      // Half an hour later: the counts of hour h add up, its addresses take the larger of the two runs' counts.
      expect(await up.purge(now + HOUR / 2)).toMatchObject({ events: 2, rolledUp: 1 });
      expect((await rollups(s))[2]).toEqual({ hour: h, type: 'smtp.connect', count: 5, ips: 3 });
      expect(await s.db.selectFrom('events').select('id').execute()).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('deletes roll-ups past their retention and policies expired over 30 days ago, never pinned ones', async () => {
    const { s } = await store();
    try {
      const now = Date.now();
      await s.db
        .insertInto('event_rollups')
        .values([
          { hour: hourOf(now - 401 * DAY), type: 'smtp.connect', count: 9, ips: 2 },
          { hour: hourOf(now - 399 * DAY), type: 'smtp.connect', count: 8, ips: 1 },
        ])
        .execute();
      const policy = (id: string, expires_at: number | null, pinned: number) => ({
        id,
        target_kind: 'ip',
        target: '192.0.2.1',
        action: 'reject',
        params: '{}',
        reason: 'harvest',
        evidence: '[]',
        created_at: now - 60 * DAY,
        expires_at,
        pinned,
        source: 'trends',
      });
      await s.db
        .insertInto('policies')
        .values([policy('OLD', now - 31 * DAY, 0), policy('PINNED', now - 31 * DAY, 1), policy('RECENT', now - 5 * DAY, 0), policy('FOREVER', null, 0)])
        .execute();
      const purged: unknown[] = [];
      const up = new Upkeep(s.db, { store: settings(), log: silentLogger, onPurged: (r) => purged.push(r) });
      expect(await up.purge(now)).toMatchObject({ events: 0, rollupsDeleted: 1, policies: 1 });
      expect(purged).toHaveLength(1);
      expect(await rollups(s)).toEqual([{ hour: hourOf(now - 399 * DAY), type: 'smtp.connect', count: 8, ips: 1 }]);
      expect((await s.db.selectFrom('policies').select('id').orderBy('id').execute()).map((p) => p.id)).toEqual(['FOREVER', 'PINNED', 'RECENT']);
    } finally {
      await s.close();
    }
  });

  it('postern store purge prints each retention class; postern store rollups lists the hourly counts', async () => {
    const { s, dir, url } = await store();
    const now = Date.now();
    try {
      await seed(s, now);
    } finally {
      await s.close();
    }
    const conf = writeFile(path.join(dir, 'postern.toml'), `data_dir = "."\n[store]\nurl = ${JSON.stringify(url)}\nevent_retention_by_type = { "smtp.connect" = 7, relay = 14 }\n`);
    const r = await inProcess(['store', 'purge', '--config', conf]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('smtp.connect, older than 7 day(s): 4500 event(s)');
    expect(r.stdout).toContain('relay, older than 14 day(s): 0 event(s)');
    expect(r.stdout).toContain('other events, older than 30 day(s): 0 event(s)');
    expect(r.stdout).toContain('older than 30 day(s): 4500 event(s), 1 message(s) and 1 recipient row(s) deleted');
    const listed = await inProcess(['store', 'rollups', '--config', conf, '--type', 'smtp', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as { hour: number; type: string; count: number; ips: number }[];
    expect(rows.reduce((n, x) => n + x.count, 0)).toBe(4500);
    expect(new Set(rows.map((x) => x.type))).toEqual(new Set(['smtp.connect']));
    expect(rows.every((x) => x.ips === 1 && x.hour % HOUR === 0 && x.hour <= now - 31 * DAY)).toBe(true);
    const none = await inProcess(['store', 'rollups', '--config', conf, '--since', '24h']);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout.trim()).toBe('no roll-ups');
  }, 120_000);
});

const hourOf = (ts: number) => Math.floor(ts / HOUR) * HOUR;

function ev(type: string, ts: number, ip: string | null) {
  return { ts, type, ip, conn_id: 'C9', msg_id: null, data: '{}' };
}

async function events(s: StoreDb, rows: ReturnType<typeof ev>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) await s.db.insertInto('events').values(rows.slice(i, i + 500)).execute();
}

function rollups(s: StoreDb) {
  return s.db.selectFrom('event_rollups').selectAll().orderBy('hour').orderBy('type').execute();
}
