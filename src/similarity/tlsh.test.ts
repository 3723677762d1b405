// The hand-written first pass of TLSH against the package's own: the same digest for any octets (random, text-like,
// real mail), and none where the package has none (too short, too plain).
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import tlshHash from 'tlsh';
import { tlshDigest, tlshDistance, tlshOf } from './tlsh.ts';

/** The package's own digest of the octets, the slow way: what tlshOf must give. */
function tlshOfPackage(data: Buffer): string | undefined {
  try {
    // The package reads code units as octets: the latin1 form of the octets is exactly those octets.
    return tlshHash(data.toString('latin1'));
  } catch {
    return undefined;
  }
}

/** What tlshOf hashes: the first 4 KiB of the UTF-8 octets, from 512 on. */
const expected = (text: string): string | undefined => {
  const octets = Buffer.from(text, 'utf8');
  return octets.length < 512 ? undefined : tlshOfPackage(octets.subarray(0, 4096));
};

describe('tlshOf', () => {
  it('gives the package digest for any text', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 0, maxLength: 6000, unit: 'binary' }), (s) => {
        expect(tlshOf(s)).toBe(expected(s));
      }),
      { numRuns: 150 },
    );
    fc.assert(
      fc.property(fc.array(fc.constantFrom('the', 'invoice', 'payment', 'account', 'verify', 'your', 'today', 'ünïcödé', '0', 'x'), { minLength: 50, maxLength: 900 }), (words) => {
        const s = words.join(' ');
        expect(tlshOf(s)).toBe(expected(s));
      }),
      { numRuns: 100 },
    );
  });

  it('gives the package digest for real mail, and none for a repeated line', () => {
    const dir = path.resolve(import.meta.dirname, '../../test/fixtures/threats');
    let digests = 0;
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.eml'))) {
      const text = fs.readFileSync(path.join(dir, f), 'latin1');
      const d = tlshOf(text);
      expect(d, f).toBe(expected(text));
      if (d) digests++;
    }
    expect(digests).toBeGreaterThan(3);
    expect(tlshOf('ab'.repeat(1000))).toBeUndefined();
    expect(tlshOf('short text')).toBeUndefined();
  });

  it('keeps near copies near and unrelated texts far', () => {
    const base = Array.from({ length: 400 }, (_, i) => `word${(i * 7919) % 211} line ${i % 13}`).join(' ');
    const a = tlshDigest(tlshOf(base)!)!;
    const b = tlshDigest(tlshOf(base.replace('word5 ', 'changed '))!)!;
    const c = tlshDigest(tlshOf(Array.from({ length: 400 }, (_, i) => `other${(i * 104729) % 997} text`).join(' '))!)!;
    expect(tlshDistance(a, b)).toBeLessThan(30);
    expect(tlshDistance(a, c)).toBeGreaterThan(100);
  });
});
