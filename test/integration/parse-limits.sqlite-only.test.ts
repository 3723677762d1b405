// [analysis.parse] bounds the shared MIME parse in the running gateway: a message over a configured cap is not
// parsed, scores MIME_UNSCANNABLE and is held, never delivered as clean; under the default caps it is delivered.
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function withPostern(toml: string): Promise<TestPostern> {
  const p = await startTestPostern(toml);
  cleanup.push(() => p.close());
  return p;
}

// Five text parts: an ordinary message, but more parts than a cap of 3 allows.
const FIVE_PARTS = [
  'From: Alice <alice@example.org>',
  'To: bob@localhost',
  'Subject: minutes of the meeting',
  'Date: Mon, 30 Nov 2026 10:00:00 +0000',
  'Message-ID: <five-parts@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  ...[1, 2, 3, 4, 5].flatMap((i) => ['--b1', 'Content-Type: text/plain; charset=us-ascii', '', `Part ${i} of the minutes.`]),
  '--b1--',
  '',
].join('\r\n');

describe.skipIf(await missing('postgres'))('parse limits', () => {
  for (const [name, toml, held] of [
    ['over a configured max_parts: held as unscannable', '[analysis.parse]\nmax_parts = 3\n', true],
    ['under the default caps: delivered', '', false],
  ] as const) {
    it(name, async () => {
      const p = await withPostern(toml);
      const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
      const info = await c.sendMail({ envelope: { from: 'alice@example.org', to: ['bob@localhost'] }, raw: FIVE_PARTS });
      expect(info.response).toMatch(/^250 /);
      const db = p.app.store.db;
      const row = await db.selectFrom('messages').select(['id', 'symbols']).where('message_id', '=', '<five-parts@example.org>').executeTakeFirstOrThrow();
      const names = (JSON.parse(row.symbols) as { name: string }[]).map((s) => s.name);
      const rcpt = await db.selectFrom('recipients').select(['action', 'status']).where('msg_id', '=', row.id).executeTakeFirstOrThrow();
      if (held) {
        expect(names).toEqual(expect.arrayContaining(['MIME_UNSCANNABLE', 'MIME_TOO_MANY_PARTS']));
        expect(rcpt).toEqual({ action: 'quarantine', status: 'quarantined' });
        expect(await p.app.maildir.list('bob@localhost')).toEqual([]);
      } else {
        expect(names).not.toContain('MIME_UNSCANNABLE');
        expect(rcpt.action).toBe('accept');
        await until(async () => (await p.app.maildir.list('bob@localhost')).length === 1, 10_000, 'delivery');
      }
    });
  }
});
