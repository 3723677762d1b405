// The similarity index on fingerprints of real composed messages: matching, cluster union, stats and eviction.
import { describe, expect, it } from 'vitest';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { buildMessageView } from '../analysis/message-view.ts';
import { configSchema } from '../config/schema.ts';
import { fingerprintOf, type Fingerprint } from './fingerprint.ts';
import { indexOptionsOf, SimilarityIndex, type EntryFacts } from './index.ts';

const OPTIONS = indexOptionsOf(configSchema.parse({}).similarity);
const H = 3_600_000;
const T0 = Date.UTC(2025, 10, 20);

const PAYROLL =
  'Your payroll account needs to be updated before the next payment run. Our records show that the bank details on file ' +
  'could not be verified by the finance department, so the salary transfer for this month is on hold. To release it, sign ' +
  'in to the employee portal with your usual credentials and confirm the account holder name and the account number. ' +
  'If the details are not confirmed within two working days the payment will be returned to the company account and ' +
  'paid with the following run. Thank you for your quick attention to this matter. Human Resources and Payroll Team';
const GARDEN =
  'The allotment committee meets on Thursday evening in the community hall to plan the spring planting. We will decide ' +
  'which beds get the new compost delivery, who takes over the greenhouse watering rota while Margaret is away, and ' +
  'whether to buy a second water butt for the lower plots. Please bring your seed lists so that we can place one joint ' +
  'order with the nursery and save on delivery. Tea and biscuits will be provided as usual, and the key to the tool ' +
  'shed will be with the secretary from Friday onwards for anyone who needs the mower.';

async function fp(opts: { to?: string; greeting?: string; text: string; file?: { name: string; content: Buffer } }): Promise<Fingerprint> {
  const raw = await new MailComposer({
    from: 'sender@example.net',
    to: opts.to ?? 'Alice Martin <alice.martin@example.com>',
    subject: 'Notice',
    text: `${opts.greeting ?? 'Hello,'}\n\n${opts.text}`,
    ...(opts.file && { attachments: [{ filename: opts.file.name, content: opts.file.content, contentType: 'application/octet-stream' }] }),
  })
    .compile()
    .build();
  return fingerprintOf(await buildMessageView(raw));
}

const facts = (ip: string, extra: Partial<EntryFacts> = {}): EntryFacts => ({ ip, senderDomain: 'example.net', recipients: 1, suspicious: false, ...extra });

describe('SimilarityIndex', () => {
  it('puts personalised copies in one cluster and unrelated text in another, with the cluster stats', async () => {
    const index = new SimilarityIndex(OPTIONS);
    const a = index.insert('a', await fp({ text: PAYROLL, greeting: 'Dear Alice Martin,' }), T0, facts('192.0.2.1', { suspicious: true }));
    const b = index.insert('b', await fp({ to: 'Bob Novak <bob.novak@example.com>', text: PAYROLL.replace('two working days', '48 hours'), greeting: 'Dear Bob Novak,' }), T0 + 60_000, facts('192.0.2.2', { recipients: 3 }));
    const c = index.insert('c', await fp({ text: GARDEN }), T0 + 120_000, facts('192.0.2.1'));
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.cluster).toBe(a.cluster);
    expect(b.matches[0]).toMatchObject({ id: 'a', sharedFile: false });
    expect(b.matches[0].score).toBeGreaterThan(0.6);
    expect(c.cluster).not.toBe(a.cluster);
    expect(c.matches).toEqual([]);
    expect(index.cluster(a.cluster)).toMatchObject({ members: 2, ips: 2, senderDomains: 1, recipients: 4, suspicious: 1, suspiciousShare: 0.5, firstSeen: T0, lastSeen: T0 + 60_000 });
    expect(index.query(await fp({ text: GARDEN, greeting: 'Hi Carl,' })).map((m) => m.id)).toEqual(['c']);
  });

  it('matches on a shared attachment whatever the text, and merges the clusters a message bridges', async () => {
    const index = new SimilarityIndex(OPTIONS);
    const file = { name: 'Invoice_88213.zip', content: Buffer.from('PK-not-really-a-zip but the same bytes in every copy') };
    const a = index.insert('a', await fp({ text: PAYROLL, file }), T0, facts('192.0.2.1'));
    const b = index.insert('b', await fp({ text: GARDEN }), T0 + 1, facts('192.0.2.2'));
    expect(b.cluster).not.toBe(a.cluster);
    const c = index.insert('c', await fp({ text: GARDEN, file: { ...file, name: 'Invoice_1.zip' } }), T0 + 2, facts('192.0.2.3'));
    expect(c.matches.find((m) => m.id === 'a')).toMatchObject({ sharedFile: true, score: 0.9 });
    // The older cluster's id survives, so ids already handed out keep meaning the campaign.
    expect(c.cluster).toBe(a.cluster);
    expect(c.merged).toEqual([b.cluster]);
    expect(index.clusterOf('b')).toBe(a.cluster);
    expect(index.cluster(b.cluster)).toMatchObject({ id: a.cluster, members: 3, ips: 3 });
    expect(index.listClusters()).toHaveLength(1);
  });

  it('evicts what the window left behind, and a later copy then starts afresh', async () => {
    const index = new SimilarityIndex(OPTIONS);
    const a = index.insert('a', await fp({ text: PAYROLL }), T0, facts('192.0.2.1'));
    index.insert('b', await fp({ text: PAYROLL, greeting: 'Hi Bob,' }), T0 + 10 * H, facts('192.0.2.2'));
    expect(index.query(await fp({ text: PAYROLL, greeting: 'Hi Dan,' }), T0 + 48 * H + 1).map((m) => m.id)).toEqual(['b']);
    expect(index.evict(T0 + 48 * H)).toBe(0);
    expect(index.evict(T0 + 48 * H + 1)).toBe(1);
    expect(index.clusterOf('a')).toBeUndefined();
    expect(index.clusterOf('b')).toBe(a.cluster);
    expect(index.cluster(a.cluster)).toMatchObject({ members: 1, ips: 1, firstSeen: T0 });
    const c = index.insert('c', await fp({ text: PAYROLL, greeting: 'Hi Carl,' }), T0 + 59 * H, facts('192.0.2.3'));
    expect(index.size).toBe(1);
    expect(index.clusterOf('b')).toBeUndefined();
    expect(index.cluster(a.cluster)).toBeUndefined();
    expect(c.created).toBe(true);
    expect(c.cluster).not.toBe(a.cluster);
  });

  it('refuses an id twice and options that contradict each other', async () => {
    const index = new SimilarityIndex(OPTIONS);
    const f = await fp({ text: GARDEN });
    index.insert('x', f, T0, facts('192.0.2.1'));
    expect(() => index.insert('x', f, T0, facts('192.0.2.1'))).toThrow('id "x" is already indexed');
    expect(() => new SimilarityIndex({ ...OPTIONS, confirmJaccard: 0.9, joinJaccard: 0.5 })).toThrow('confirm_jaccard (0.9) must not exceed join_jaccard (0.5)');
  });

  it('does not band a text too short to say anything', async () => {
    const index = new SimilarityIndex(OPTIONS);
    index.insert('a', await fp({ text: 'See you at ten.' }), T0, facts('192.0.2.1'));
    expect(index.insert('b', await fp({ text: 'See you at ten.' }), T0 + 1, facts('192.0.2.2')).matches).toEqual([]);
  });
});
