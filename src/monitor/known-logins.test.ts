// Known login addresses: what the analyzer stores and what this process remembers, the retention, and the
// same-network option, on a real SQLite store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type StoreDb } from '../store/db.ts';
import { KnownLogins as Reader } from './known-logins.ts';
import { KnownLogins as Fold } from '../trends/known-logins.ts';

const DAY = 86_400_000;
let dir: string;
let store: StoreDb;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-known-'));
  store = await openStore({ url: '', dataDir: dir });
});

afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Stores successful logins as the analyzer does, from auth.succeeded events. */
async function learn(...logins: [user: string, ip: string, ts: number][]): Promise<void> {
  const fold = new Fold();
  logins.forEach(([user, ip, ts], i) => fold.observe({ id: i + 1, ts, type: 'auth.succeeded', ip, conn_id: null, msg_id: null, data: { user, protocol: 'imap' } }));
  await fold.flush(store.db);
}

describe('known login addresses', () => {
  it('are the stored addresses within the retention, merged across writes, exact unless same_network', async () => {
    const now = Date.now();
    await learn(['Alice@Example.com', '::ffff:192.0.2.10', now - 5_000], ['alice@example.com', '192.0.2.10', now - 9_000], ['alice@example.com', '198.51.100.7', now - 200 * DAY]);
    await learn(['alice@example.com', '192.0.2.10', now - 1_000]);
    const row = await store.db.selectFrom('mailbox_logins').selectAll().where('ip', '=', '192.0.2.10').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ user: 'alice@example.com' });
    expect([Number(row.first_ok), Number(row.last_ok), Number(row.logins)]).toEqual([now - 9_000, now - 1_000, 3]);
    const exact = new Reader(store.db, { retentionMs: 180 * DAY, sameNetwork: false });
    expect(await exact.isKnown('ALICE@example.com', '192.0.2.10', now)).toBe(true);
    expect(await exact.isKnown('alice@example.com', '192.0.2.11', now)).toBe(false);
    // Last used 200 days ago: past the retention, not known.
    expect(await exact.isKnown('alice@example.com', '198.51.100.7', now)).toBe(false);
    expect(await exact.isKnown('bob@example.com', '192.0.2.10', now)).toBe(false);
    const nets = new Reader(store.db, { retentionMs: 180 * DAY, sameNetwork: true });
    expect(await nets.isKnown('alice@example.com', '192.0.2.200', now)).toBe(true);
    expect(await nets.isKnown('alice@example.com', '192.0.3.10', now)).toBe(false);
  });

  it('count a login this process saw before the analyzer stored it, with its network when asked', async () => {
    const now = Date.now();
    const exact = new Reader(store.db, { retentionMs: DAY, sameNetwork: false });
    const nets = new Reader(store.db, { retentionMs: DAY, sameNetwork: true });
    expect(await exact.isKnown('carol@example.com', '2001:db8:1:2::5', now)).toBe(false);
    for (const r of [exact, nets]) r.remember('carol@example.com', '2001:db8:1:2::5', now);
    expect(await exact.isKnown('carol@example.com', '2001:db8:1:2::5', now)).toBe(true);
    expect(await exact.isKnown('carol@example.com', '2001:db8:1:2::6', now)).toBe(false);
    expect(await nets.isKnown('carol@example.com', '2001:db8:1:2:ffff::1', now)).toBe(true);
    expect(await nets.isKnown('carol@example.com', '2001:db8:1:3::5', now)).toBe(false);
    // A day later the memory is past the retention too.
    expect(await exact.isKnown('carol@example.com', '2001:db8:1:2::5', now + DAY + 1)).toBe(false);
  });
});
