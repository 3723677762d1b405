// The fingerprint of real fixture messages: normalisation, attachment and archive-member hashes, the structural
// signature, TLSH, JSON round trip, and messages that give little or nothing to fingerprint.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMessageView } from '../analysis/message-view.ts';
import { FIXTURES } from './fixtures.ts';
import { fingerprintOf } from './fingerprint.ts';
import { nameWords, normaliseName, normalisedTokens } from './normalise.ts';
import { fingerprintSchema } from './store.ts';
import { corpus, readCorpusItem } from '../../scripts/corpus.ts';

const view = (dir: string, f: string) => buildMessageView(fs.readFileSync(path.join(FIXTURES, dir, f)));

describe('normalisation', () => {
  it('replaces names, greetings, numbers, URLs, addresses and random tokens', () => {
    const names = nameWords('"Martin, Alice" <alice.martin@fabrikam.com>');
    expect([...names].sort()).toEqual(['alice', 'martin']);
    const t = normalisedTokens(
      'RE: Fwd: Invoice 88213',
      'Dear Bob Novak,\nAlice, your invoice INV-88213 of 1,250.00 EUR is due.\nSee https://x.example/p?id=9 or mail billing@x.example ref qxzvbnmkjhgf\n> quoted line\n-- \nsignature words',
      names,
    );
    expect(t.join(' ')).toBe('invoice # dear xnamex xnamex your invoice inv # of # eur is due see xurlx or mail xemailx ref xrndx');
  });

  it('normalises attachment names', () => {
    expect(normaliseName('Invoice_88213.pdf')).toBe('invoice_#.pdf');
    expect(normaliseName('Shipment_7731440982.zip')).toBe('shipment_#.zip');
    expect(normaliseName('scan-qwrtzpsdfghjk.PDF')).toBe('scan-*.pdf');
  });
});

describe('fingerprintOf', () => {
  it('hashes the attachment and the archive member, and signs the structure', async () => {
    const v = await view('threats', 'exe-in-zip.eml');
    const fp = await fingerprintOf(v);
    const { email } = await v.parse();
    const zip = Buffer.from(email!.attachments[0].content as ArrayBuffer);
    expect(fp.attachments).toEqual([createHash('sha256').update(zip).digest('hex')]);
    expect(fp.members).toHaveLength(1);
    expect(fp.members[0]).not.toBe(fp.attachments[0]);
    expect(fp.structure).toMatchObject({ layout: 'multipart/mixed|t1', types: ['application/zip'], names: ['shipment_#.zip'] });
    expect(fp.minhash).toHaveLength(64);
    expect(fp.shingles).toBeGreaterThan(30);
    // Under 512 octets of text: no TLSH digest.
    expect(fp.tlsh).toBeUndefined();
    // Computed once per view.
    expect(await fingerprintOf(v)).toBe(fp);
  });

  it('digests a longer text with TLSH and keeps URL domains; the fingerprint survives JSON', async () => {
    // A long message of the development corpus with links (the fixtures' texts are all under 512 octets).
    const it = corpus().find((c) => c.folder === 'easy-ham-1' && c.name.startsWith('00004.'));
    const fp = await fingerprintOf(await buildMessageView(readCorpusItem(it!)));
    expect(fp.tlsh).toMatch(/^[0-9A-F]{70}$/);
    expect(fp.structure.domains.length).toBeGreaterThan(0);
    const back = fingerprintSchema.parse(JSON.parse(JSON.stringify(fp)));
    expect(back).toEqual(fp);
  });

  it('gives an empty fingerprint, not an error, for a message with nothing to read', async () => {
    const fp = await fingerprintOf(await buildMessageView(Buffer.from('Subject: \r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n')));
    expect(fp).toMatchObject({ minhash: [], shingles: 0, attachments: [], members: [] });
    expect(fp.tlsh).toBeUndefined();
  });
});
