// Learning from outbound mail on the test store (SQLite, or PostgreSQL under POSTERN_TEST_STORE=postgres): counts and
// recency per pair, colleagues skipped, sent Message-IDs kept and purged; the book in memory follows the store and
// what this process learns.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoreDb } from '../store/db.ts';
import { openTestStore, TEST_STORE } from '../../test/harness/postern.ts';
import { missing } from '../../test/harness/services.ts';
import { CorrespondentBook, purgeSent, recordOutbound, registrable } from './correspondents.ts';

const DAY = 86_400_000;
const OURS = ['fabrikam.com'];

describe.skipIf(await missing('postgres'))(`correspondents on ${TEST_STORE}`, () => {
  let s: StoreDb;
  let done: () => Promise<void>;
  beforeEach(async () => ({ store: s, close: done } = await openTestStore()));
  afterEach(() => done());

  it('counts each (sender, external recipient) pair, skips colleagues and keeps the Message-ID', async () => {
    const t0 = Date.UTC(2025, 0, 1);
    const first = await recordOutbound(s.db, { sender: 'Alice@Fabrikam.com', recipients: ['jonas@contoso.com', 'bob@fabrikam.com', 'JONAS@contoso.com'], messageId: '<a1@fabrikam.com>', now: t0, ourDomains: OURS });
    expect(first).toEqual(['jonas@contoso.com']);
    await recordOutbound(s.db, { sender: 'alice@fabrikam.com', recipients: ['jonas@contoso.com', 'lena@contoso.com'], messageId: 'a2@fabrikam.com', now: t0 + DAY, ourDomains: OURS });
    // A Message-ID that is not one (blanks, no @, too long) is not kept; the pair is still learned.
    for (const bad of ['<not an id>', 'no-at-sign', `<${'x'.repeat(300)}@fabrikam.com>`]) {
      await recordOutbound(s.db, { sender: 'dora@fabrikam.com', recipients: ['x@contoso.com'], messageId: bad, now: t0, ourDomains: OURS });
    }
    expect(await s.db.selectFrom('correspondents').selectAll().where('internal', '=', 'dora@fabrikam.com').execute()).toMatchObject([{ messages: 3 }]);
    await s.db.deleteFrom('correspondents').where('internal', '=', 'dora@fabrikam.com').execute();
    // Only colleagues: nothing to learn, nothing written.
    expect(await recordOutbound(s.db, { sender: 'alice@fabrikam.com', recipients: ['bob@fabrikam.com'], messageId: '<a3@fabrikam.com>', now: t0, ourDomains: OURS })).toEqual([]);
    const rows = await s.db.selectFrom('correspondents').selectAll().orderBy('external').execute();
    expect(rows.map((r) => [r.internal, r.external, Number(r.messages), Number(r.first_seen), Number(r.last_seen)])).toEqual([
      ['alice@fabrikam.com', 'jonas@contoso.com', 2, t0, t0 + DAY],
      ['alice@fabrikam.com', 'lena@contoso.com', 1, t0 + DAY, t0 + DAY],
    ]);
    const sent = await s.db.selectFrom('sent_messages').selectAll().orderBy('message_id').execute();
    expect(sent.map((r) => [r.message_id, r.recipients])).toEqual([
      ['a1@fabrikam.com', 'jonas@contoso.com'],
      ['a2@fabrikam.com', 'jonas@contoso.com,lena@contoso.com'],
    ]);
    expect(await purgeSent(s.db, t0 + DAY / 2)).toBe(1);
    expect((await s.db.selectFrom('sent_messages').select('message_id').execute()).map((r) => r.message_id)).toEqual(['a2@fabrikam.com']);
  });

  it('loads the store, tops up from it, and learns at once what this process records', async () => {
    const now = Date.now();
    await recordOutbound(s.db, { sender: 'alice@fabrikam.com', recipients: ['jonas@mail.contoso.co.uk'], messageId: '<x1@fabrikam.com>', now: now - 40 * DAY, ourDomains: OURS });
    const book = new CorrespondentBook(s.db, { sentRetentionMs: 30 * DAY });
    await book.load();
    expect(book.pair('alice@fabrikam.com', 'jonas@mail.contoso.co.uk')).toMatchObject({ messages: 1 });
    expect(book.domain('contoso.co.uk')).toMatchObject({ messages: 1, addresses: 1 });
    expect([...book.domains()]).toEqual(['contoso.co.uk']);
    // Older than the retention: a reply to it is no longer recognised.
    expect(book.sent('<x1@fabrikam.com>')).toBeUndefined();

    // Learned here: known before any reload.
    await recordOutbound(s.db, { sender: 'alice@fabrikam.com', recipients: ['jonas@mail.contoso.co.uk'], messageId: '<x2@fabrikam.com>', now, ourDomains: OURS }, book);
    expect(book.pair('alice@fabrikam.com', 'jonas@mail.contoso.co.uk')).toMatchObject({ messages: 2 });
    expect(book.sent('x2@fabrikam.com')).toMatchObject({ sender: 'alice@fabrikam.com', recipients: ['jonas@mail.contoso.co.uk'] });

    // Learned by another process: known after the next top-up, and the reload does not count it twice.
    await recordOutbound(s.db, { sender: 'carol@fabrikam.com', recipients: ['sales@northwind.com'], messageId: null, now, ourDomains: OURS });
    expect(book.pair('carol@fabrikam.com', 'sales@northwind.com')).toBeUndefined();
    await book.load();
    expect(book.pair('carol@fabrikam.com', 'sales@northwind.com')).toMatchObject({ messages: 1 });
    expect(book.pair('alice@fabrikam.com', 'jonas@mail.contoso.co.uk')).toMatchObject({ messages: 2 });
    expect(book.domain('contoso.co.uk')).toMatchObject({ messages: 2 });
  });

  it('knows the sender domains that sent steadily and cleanly, from the data matrix', async () => {
    const now = Date.now();
    const row = (key: string, messages: number, quarantined: number, ageDays: number) => ({
      kind: 'sender_domain', key, first_seen: now - ageDays * DAY, last_seen: now, connections: messages, messages, recipients: messages,
      unknown_recipients: 0, refused: 0, quarantined, delivered: messages - quarantined, protocol_errors: 0, score_sum: 0, score_n: messages, score_hist: '{}', actions: '{}',
    });
    await s.db.insertInto('source_stats').values([row('mail.bank.example', 40, 1, 60), row('news.shop.example', 40, 20, 60), row('new.example', 40, 0, 2), row('few.example', 3, 0, 60)]).execute();
    const book = new CorrespondentBook(s.db, { sentRetentionMs: DAY });
    await book.load();
    expect(book.steady('bank.example')).toMatchObject({ messages: 40 });
    // Half of it held, too young, too few.
    for (const d of ['shop.example', 'new.example', 'few.example']) expect(book.steady(d), d).toBeUndefined();
    expect(book.empty()).toBe(false);
  });

  it('names registrable domains by the public suffix list', () => {
    expect(registrable('mail.contoso.co.uk')).toBe('contoso.co.uk');
    expect(registrable('Billing.Contoso-Supplies.com.')).toBe('contoso-supplies.com');
  });
});
