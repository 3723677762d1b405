// The gateway's view of the policy table: every target kind matched by what it targets, in table order, expired
// policies left out, and a table of thousands of blocks answered by lookup.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type StoreDb } from '../store/db.ts';
import { PolicyTable } from './live.ts';

let dir: string;
let store: StoreDb;
beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-live-'));
  store = await openStore({ url: '', dataDir: dir });
});
afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let n = 0;
const row = (target_kind: string, target: string, action = 'block', extra: { params?: object; expires_at?: number | null } = {}) => ({
  id: `P${String(++n).padStart(6, '0')}`,
  target_kind,
  target,
  action,
  params: JSON.stringify(extra.params ?? {}),
  reason: `${target_kind} ${target}`,
  evidence: '{}',
  created_at: n,
  expires_at: extra.expires_at === undefined ? null : extra.expires_at,
  pinned: 0,
  source: 'admin',
});

describe('PolicyTable', () => {
  it('matches each kind by its target, in table order, without expired ones', async () => {
    const now = Date.now();
    const rows = [
      row('cidr', '192.0.2.0/24'),
      row('ip', '192.0.2.7', 'tarpit', { params: { delay_ms: 100 } }),
      row('ip', '192.0.2.8', 'block', { expires_at: now - 1 }),
      row('cidr', '2001:db8::/64'),
      row('helo', 'Mx.Spam.Example'),
      row('domain', 'spam.example'),
      row('sender', '*@lists.example', 'allow'),
      row('recipient', 'ceo@example.org', 'quarantine', { params: { null_sender: true } }),
      row('recipient', '*@example.org', 'redirect', { params: { to: 'review@example.org' } }),
      row('user', 'Alice', 'tarpit'),
    ];
    await store.db.insertInto('policies').values(rows).execute();
    const t = new PolicyTable(store.db);
    await t.load(now);
    const ids = (f: Parameters<PolicyTable['match']>[0]) => t.match(f, now).map((p) => p.reason);
    expect(ids({ ip: '::ffff:192.0.2.7' })).toEqual(['cidr 192.0.2.0/24', 'ip 192.0.2.7']);
    expect(ids({ ip: '192.0.2.8' })).toEqual(['cidr 192.0.2.0/24']);
    expect(ids({ ip: '2001:db8::5' })).toEqual(['cidr 2001:db8::/64']);
    expect(ids({ ip: '198.51.100.1', helo: 'mx.spam.example' })).toEqual(['helo Mx.Spam.Example']);
    expect(ids({ sender: 'Bob@SPAM.example' })).toEqual(['domain spam.example']);
    expect(ids({ sender: 'bob@sub.spam.example' })).toEqual([]);
    expect(ids({ sender: 'news@lists.example' })).toEqual(['sender *@lists.example']);
    expect(ids({ sender: '', recipient: 'ceo@example.org' })).toEqual(['recipient ceo@example.org', 'recipient *@example.org']);
    expect(ids({ sender: 'partner@example.net', recipient: 'ceo@example.org' })).toEqual(['recipient *@example.org']);
    expect(ids({ user: 'alice' })).toEqual(['user Alice']);
    // A policy that expires after the load is left out from then on.
    await store.db.insertInto('policies').values(row('ip', '198.51.100.9', 'block', { expires_at: now + 1000 })).execute();
    await t.load(now);
    expect(ids({ ip: '198.51.100.9' })).toEqual(['ip 198.51.100.9']);
    expect(t.match({ ip: '198.51.100.9' }, now + 1000)).toEqual([]);
  });

  it('applies a policy scoped to recipients (params.for) only to them, and never without a recipient', async () => {
    await store.db
      .insertInto('policies')
      .values([
        row('sender', 'boss@partner.example', 'allow', { params: { for: 'alice@example.org' } }),
        row('sender', 'spam@junk.example', 'block', { params: { for: '*@example.org' } }),
        row('sender', 'spam@junk.example', 'block'),
      ])
      .execute();
    const t = new PolicyTable(store.db);
    await t.load();
    const ids = (f: Parameters<PolicyTable['match']>[0]) => t.match(f).map((p) => p.reason + (p.params.for ? ` for ${String(p.params.for)}` : ''));
    expect(ids({ sender: 'boss@partner.example', recipient: 'alice@example.org' })).toEqual(['sender boss@partner.example for alice@example.org']);
    expect(ids({ sender: 'boss@partner.example', recipient: 'bob@example.org' })).toEqual([]);
    expect(ids({ sender: 'boss@partner.example' })).toEqual([]);
    expect(ids({ sender: 'spam@junk.example', recipient: 'bob@example.org' })).toEqual(['sender spam@junk.example for *@example.org', 'sender spam@junk.example']);
    expect(ids({ sender: 'spam@junk.example', recipient: 'carol@example.net' })).toEqual(['sender spam@junk.example']);
  });

  it('answers from a table of 20,000 address blocks', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => row('ip', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    for (let i = 0; i < rows.length; i += 500) await store.db.insertInto('policies').values(rows.slice(i, i + 500)).execute();
    const t = new PolicyTable(store.db);
    await t.load();
    expect(t.size).toBe(20_000);
    expect(t.match({ ip: '10.0.78.31' }).map((p) => p.target)).toEqual(['10.0.78.31']);
    expect(t.match({ ip: '10.0.78.32' })).toEqual([]);
    expect(t.match({ ip: '10.1.0.0', helo: 'x', sender: 'a@b.example', recipient: 'c@d.example' })).toEqual([]);
  });
});
