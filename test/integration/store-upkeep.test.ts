// Retention: events and finished messages older than store.event_retention_days are purged, in batches, on the
// store the project selects; open and quarantined messages stay. `postern store purge` runs the same purge now.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshPgSchema, tempDir, TEST_STORE } from '../harness/postern.ts';
import { cli, writeFile } from '../harness/child.ts';
import { openStore, type StoreDb } from '../../src/store/db.ts';
import { Upkeep } from '../../src/store/upkeep.ts';
import { silentLogger } from '../../src/core/log.ts';

const DAY = 86_400_000;
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
    .values({ id: 'Q1', msg_id: 'OLDQUAR', rcpt: 'u@localhost', blob: 'b', reason: 'score', score: 9, symbols: '[]', sender: 'a@example.org', subject: 's', size: 1, created_at: now - 40 * DAY, expires_at: now + DAY, status: 'held' })
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
      const up = new Upkeep(s.db, { retentionDays: 30, log: silentLogger, onPurged: (r) => purged.push(r) });
      expect(await up.purge(now)).toEqual({ events: 4500, messages: 1, recipients: 1 });
      expect(purged).toHaveLength(1);
      const ids = (await s.db.selectFrom('messages').select('id').orderBy('id').execute()).map((r) => r.id);
      expect(ids).toEqual(['NEWDONE', 'OLDOPEN', 'OLDQUAR']);
      expect((await s.db.selectFrom('recipients').select('msg_id').orderBy('msg_id').execute()).map((r) => r.msg_id)).toEqual(['NEWDONE', 'OLDOPEN', 'OLDQUAR']);
      expect(await s.db.selectFrom('events').select('conn_id').execute()).toEqual([{ conn_id: 'C2' }, { conn_id: 'C2' }, { conn_id: 'C2' }]);
      // A second run finds nothing and reports nothing.
      expect(await up.purge(now)).toEqual({ events: 0, messages: 0, recipients: 0 });
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
    const conf = writeFile(path.join(dir, 'postern.toml'), `data_dir = "."\n[store]\nurl = ${JSON.stringify(url)}\nevent_retention_days = 90\n`);
    const kept = await cli(['store', 'purge', '--config', conf, '--json'], dir);
    expect(kept.code, kept.stderr).toBe(0);
    expect(JSON.parse(kept.stdout)).toEqual({ older_than_days: 90, events: 0, messages: 0, recipients: 0 });
    const r = await cli(['store', 'purge', '--config', conf, '--older-than-days', '3'], dir);
    expect(r.code, r.stderr).toBe(0);
    // NEWDONE (5 days) goes too at 3 days; the events of 0, 1 and 2 days ago stay.
    expect(r.stdout).toContain('older than 3 day(s): 4500 event(s), 2 message(s) and 2 recipient row(s) deleted');
    const bad = await cli(['store', 'purge', '--config', conf, '--older-than-days', 'soon'], dir);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('--older-than-days must be a number of days');
  });
});
