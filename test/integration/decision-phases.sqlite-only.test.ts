// Checks of every phase feed the decision: a `connect` check before the greeting counts for each message of the
// session, an `rcpt` check at RCPT counts for its recipient alone (so one recipient can be held while another is
// delivered), and a failing rcpt check declared onError 'defer' answers 451 at RCPT.
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { CHECKS } from '../../src/analysis/checks/index.ts';
import { defineCheck } from '../../src/analysis/check.ts';

const connectCheck = defineCheck({
  name: 'test-connect',
  phase: 'connect',
  symbols: { TEST_LOOPBACK_CLIENT: { score: 1.5, group: 'protocol', description: 'client on loopback' } },
  run({ session }, ctx) {
    if (session.ip === '127.0.0.1') ctx.hit('TEST_LOOPBACK_CLIENT', { detail: [session.ip] });
  },
});

const rcptCheck = defineCheck({
  name: 'test-rcpt',
  phase: 'rcpt',
  symbols: { TEST_SPAMTRAP: { score: 20, group: 'policy', description: 'mail to a spam trap' } },
  onError: 'defer',
  async run({ envelope }, ctx) {
    const to = envelope?.rcptTo[0] ?? '';
    if (to.startsWith('broken@')) throw new Error('lookup failed');
    if (to.startsWith('trap@')) ctx.hit('TEST_SPAMTRAP', { detail: [to] });
  },
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function withPostern(): Promise<TestPostern> {
  const p = await startTestPostern('', { checks: [...CHECKS, connectCheck, rcptCheck] });
  cleanup.push(() => p.close());
  return p;
}

const client = (port: number) => nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
const msg = (to: string[], id: string) => ({ from: 'alice@example.org', to, subject: 'phases', text: 'hello\n', messageId: `<${id}@example.org>` });

describe.skipIf(await missing('postgres'))('decision phases', () => {
  it('connect hits count for the message, rcpt hits for their recipient only', async () => {
    const p = await withPostern();
    const c = client(p.port);
    const info = await c.sendMail(msg(['bob@localhost', 'trap@localhost'], 'mixed'));
    expect(info.accepted.sort()).toEqual(['bob@localhost', 'trap@localhost']);
    const db = p.app.store.db;
    const row = await db.selectFrom('messages').selectAll().where('message_id', '=', '<mixed@example.org>').executeTakeFirstOrThrow();
    const symbols = JSON.parse(row.symbols) as { name: string; rcpt?: string }[];
    expect(symbols).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'TEST_LOOPBACK_CLIENT' }), { name: 'TEST_SPAMTRAP', score: 20, detail: ['trap@localhost'], rcpt: 'trap@localhost' }]));
    expect(row.score).toBe(1.5);
    const rcpts = await db.selectFrom('recipients').select(['rcpt', 'action', 'status']).where('msg_id', '=', row.id).orderBy('rcpt').execute();
    // trap's own score (21.5) says reject; one reply serves both, so its copy is held instead.
    expect(rcpts).toEqual([
      { rcpt: 'bob@localhost', action: 'accept', status: expect.stringMatching(/queued|delivered/) },
      { rcpt: 'trap@localhost', action: 'quarantine', status: 'quarantined' },
    ]);
    await until(async () => (await p.app.maildir.list('bob@localhost')).length === 1, 10_000, 'bob delivered');
    expect(await p.app.maildir.list('trap@localhost')).toEqual([]);

    await p.app.sink.flush();
    const events = await db.selectFrom('events').select(['type', 'data']).where('conn_id', '=', row.conn_id).execute();
    const connect = events.find((e) => e.type === 'smtp.connect');
    expect(JSON.parse(connect!.data).symbols).toEqual(['TEST_LOOPBACK_CLIENT']);
    const accepted = events.filter((e) => e.type === 'smtp.rcpt.accepted').map((e) => JSON.parse(e.data) as { rcpt: string; symbols: string[] });
    expect(accepted.map((a) => [a.rcpt, a.symbols])).toEqual([
      ['bob@localhost', []],
      ['trap@localhost', ['TEST_SPAMTRAP']],
    ]);
  });

  it('a message only for the trap is refused at DATA and never owned', async () => {
    const p = await withPostern();
    await expect(client(p.port).sendMail(msg(['trap@localhost'], 'trap'))).rejects.toMatchObject({ responseCode: 554 });
    expect(await p.app.store.db.selectFrom('messages').select('id').execute()).toEqual([]);
  });

  it('an rcpt check that fails with onError defer answers 451 4.3.0 for that recipient', async () => {
    const p = await withPostern();
    const info = await client(p.port).sendMail(msg(['bob@localhost', 'broken@localhost'], 'broken'));
    expect(info.accepted).toEqual(['bob@localhost']);
    expect(info.rejected).toEqual(['broken@localhost']);
    expect(info.rejectedErrors?.[0].response).toMatch(/^451 4\.3\.0 /);
    await p.app.sink.flush();
    const failed = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'check.failed').execute();
    expect(failed.map((e) => JSON.parse(e.data).check)).toEqual(['test-rcpt']);
  });
});
