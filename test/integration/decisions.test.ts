// Per-recipient decisions: static rules, redirect, split deliveries, defer, and live policies taking effect.
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { missing } from '../harness/services.ts';
import { findTrace } from '../../src/cli/trace.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function withPostern(toml: string): Promise<TestPostern> {
  const p = await startTestPostern(toml);
  cleanup.push(() => p.close());
  return p;
}

const MSG = (to: string, extra = '') =>
  `From: Alice <alice@example.org>\r\nTo: ${to}\r\nSubject: quarterly numbers\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@example.org>\r\n${extra}\r\nHello,\r\nthe numbers are attached.\r\n`;

describe.skipIf(await missing('postgres'))('decisions', () => {
  it('splits one message into per-recipient actions: accept, redirect, quarantine', async () => {
    const p = await withPostern(`
[policy]
redirect_to = "review@localhost"
[[policy.rules]]
recipient = "legal@localhost"
action = "redirect"
[[policy.rules]]
recipient = "ceo@localhost"
sender = "*@example.org"
action = "quarantine"
`);
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    const info = await c.sendMail({ envelope: { from: 'alice@example.org', to: ['bob@localhost', 'legal@localhost', 'ceo@localhost'] }, raw: MSG('team@localhost') });
    const qid = /queued as (\w+)/.exec(info.response)![1];
    await until(async () => (await p.app.maildir.list('bob@localhost')).length === 1 && (await p.app.maildir.list('review@localhost')).length === 1);
    expect(await p.app.maildir.list('legal@localhost')).toHaveLength(0);
    expect(await p.app.maildir.list('ceo@localhost')).toHaveLength(0);
    const q = await p.app.store.db.selectFrom('quarantine').selectAll().where('msg_id', '=', qid).execute();
    expect(q.map((r) => r.rcpt)).toEqual(['ceo@localhost']);
    await p.app.sink.flush();
    const t = (await findTrace(p.app.store, qid))!;
    const byRcpt = Object.fromEntries(t.recipients.map((r: any) => [r.rcpt, r]));
    expect(byRcpt['bob@localhost']).toMatchObject({ action: 'accept', status: 'delivered' });
    expect(byRcpt['legal@localhost']).toMatchObject({ action: 'redirect', deliver_to: 'review@localhost', status: 'delivered' });
    expect(byRcpt['ceo@localhost']).toMatchObject({ action: 'quarantine', status: 'quarantined' });
    expect(byRcpt['ceo@localhost'].reasons[0].detail).toContain('ceo@localhost');
  });

  it('refuses at DATA when every recipient is refused, defers when one is deferred, and holds the refused one when others accept', async () => {
    const p = await withPostern(`
[[policy.rules]]
recipient = "closed@localhost"
action = "reject"
[[policy.rules]]
recipient = "later@localhost"
action = "defer"
`);
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    await expect(c.sendMail({ envelope: { from: 'a@example.org', to: ['closed@localhost'] }, raw: MSG('closed@localhost') })).rejects.toMatchObject({
      response: '550 5.7.1 Message refused by policy',
    });
    await expect(c.sendMail({ envelope: { from: 'a@example.org', to: ['later@localhost'] }, raw: MSG('later@localhost') })).rejects.toMatchObject({
      response: '451 4.7.1 Please try again later',
    });
    const mixed = await c.sendMail({ envelope: { from: 'a@example.org', to: ['closed@localhost', 'open@localhost'] }, raw: MSG('x@localhost') });
    const qid = /queued as (\w+)/.exec(mixed.response)![1];
    const rows = await p.app.store.db.selectFrom('recipients').selectAll().where('msg_id', '=', qid).orderBy('rcpt').execute();
    expect(rows.map((r) => [r.rcpt, r.action])).toEqual([
      ['closed@localhost', 'quarantine'],
      ['open@localhost', 'accept'],
    ]);
    expect(JSON.parse(rows[0].reasons).map((r: any) => r.source)).toEqual(['rule', 'mixed-recipients']);
  });

  it('applies a live policy written to the store within a second, records it, and lets postmaster through', async () => {
    const p = await withPostern('');
    const s1 = await RawSmtp.connect(p.port, { localAddress: '127.0.0.7' });
    expect(await s1.reply()).toMatch(/^220 /);
    expect(await s1.cmd('EHLO client.example.org')).toMatch(/^250/);
    expect(await s1.cmd('MAIL FROM:<a@example.org>')).toMatch(/^250/);
    expect(await s1.cmd('RCPT TO:<bob@localhost>')).toMatch(/^250/);
    s1.close();
    await p.app.store.db
      .insertInto('policies')
      .values({
        id: 'pol-test-1',
        target_kind: 'ip',
        target: '127.0.0.7',
        action: 'block',
        params: '{}',
        reason: 'test block',
        evidence: '{}',
        created_at: Date.now(),
        expires_at: Date.now() + 60_000,
        pinned: 0,
        source: 'admin',
      })
      .execute();
    await new Promise((r) => setTimeout(r, 1100));
    const s2 = await RawSmtp.connect(p.port, { localAddress: '127.0.0.7' });
    await s2.reply();
    await s2.cmd('EHLO client.example.org');
    expect(await s2.cmd('MAIL FROM:<a@example.org>')).toMatch(/^250/);
    expect(await s2.cmd('RCPT TO:<bob@localhost>')).toBe('550 5.7.1 Message refused by policy\r\n');
    expect(await s2.cmd('RCPT TO:<postmaster@localhost>')).toMatch(/^250/);
    s2.close();
    // Another source is not affected.
    const s3 = await RawSmtp.connect(p.port, { localAddress: '127.0.0.8' });
    await s3.reply();
    await s3.cmd('EHLO other.example.org');
    await s3.cmd('MAIL FROM:<a@example.org>');
    expect(await s3.cmd('RCPT TO:<bob@localhost>')).toMatch(/^250/);
    s3.close();
    await p.app.sink.flush();
    const ev = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'smtp.rcpt.rejected').execute();
    expect(JSON.parse(ev[0].data)).toMatchObject({ reason: 'policy', policy: 'pol-test-1', policy_reason: 'test block' });
  });
});
