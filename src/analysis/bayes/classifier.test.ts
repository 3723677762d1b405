// Robinson-Fisher combining: known values of the chi-square tail, and properties of the classification.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BayesModel, chi2Q, modelFromItems, messageDigest } from './classifier.ts';

describe('chi2Q', () => {
  it('is the chi-square upper tail for even degrees of freedom', () => {
    expect(chi2Q(0, 2)).toBe(1);
    // v = 2: exp(-x/2)
    expect(chi2Q(4, 2)).toBeCloseTo(Math.exp(-2), 12);
    // v = 4: exp(-x/2) (1 + x/2); tables give 0.0916 for x = 8
    expect(chi2Q(8, 4)).toBeCloseTo(0.0916, 4);
    expect(chi2Q(1_000, 10)).toBeLessThan(1e-100);
  });
});

const spamWords = ['viagra', 'winner', 'cash', 'offer', 'click', 'free', 'money', 'prize'];
const hamWords = ['meeting', 'patch', 'review', 'kernel', 'thanks', 'agenda', 'build', 'release'];
const model = modelFromItems([
  ...Array.from({ length: 50 }, (_, i) => ({ cls: 'spam' as const, tokens: [...spamWords.slice(0, 4 + (i % 4)), `s${i}`, 'common'] })),
  ...Array.from({ length: 50 }, (_, i) => ({ cls: 'ham' as const, tokens: [...hamWords.slice(0, 4 + (i % 4)), `h${i}`, 'common'] })),
]);

describe('BayesModel', () => {
  it('calls spam spam and ham ham, and says nothing about unknown words', () => {
    expect(model.classify(['viagra', 'winner', 'cash', 'common']).prob).toBeGreaterThan(0.99);
    expect(model.classify(['meeting', 'patch', 'review', 'common']).prob).toBeLessThan(0.01);
    expect(model.classify(['never', 'seen', 'before'])).toEqual({ prob: 0.5, clues: 0, top: [] });
    // 'common' is in every message of both classes: not a clue.
    expect(model.classify(['common']).clues).toBe(0);
  });

  it("pulls a rarely seen token toward 0.5 (Robinson's f(w))", () => {
    const m = new BayesModel(new Map([['once', { spam: 1, ham: 0 }], ['often', { spam: 40, ham: 0 }]]), 50, 50);
    const once = m.tokenProb({ spam: 1, ham: 0 });
    const often = m.tokenProb({ spam: 40, ham: 0 });
    expect(once).toBeGreaterThan(0.5);
    expect(once).toBeLessThan(often);
    expect(often).toBeGreaterThan(0.98);
  });

  it('does not depend on the order or repetition of tokens, and stays within 0..1', () => {
    const vocab = [...spamWords, ...hamWords, 'common', 'zzz'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...vocab), { maxLength: 30 }), (toks) => {
        const uniq = [...new Set(toks)];
        const a = model.classify(uniq).prob;
        const b = model.classify([...uniq].reverse()).prob;
        expect(a).toBeCloseTo(b, 12);
        expect(a).toBeGreaterThanOrEqual(0);
        expect(a).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('combines at most maxDiscriminators clues', () => {
    const many = Array.from({ length: 500 }, (_, i) => [`t${i}`, { spam: 30, ham: 1 }] as const);
    const m = new BayesModel(new Map(many), 50, 50);
    expect(m.classify(many.map(([t]) => t)).clues).toBe(150);
  });
});

describe('messageDigest', () => {
  it('is the same for the message with LF and with CRLF line ends and with trace headers added, and differs for another body', () => {
    const h = (v: Record<string, string>) => (n: string) => v[n];
    const hdr = h({ from: 'a@b', subject: 'x' });
    const lf = Buffer.from('From: a@b\nSubject: x\n\nline one\nline two\n');
    const crlf = Buffer.from('Received: from x\r\nFrom: a@b\r\nSubject: x\r\n\r\nline one\r\nline two\r\n');
    const d1 = messageDigest(lf, lf.indexOf('\n\n') + 2, hdr);
    const d2 = messageDigest(crlf, crlf.indexOf('\r\n\r\n') + 4, hdr);
    expect(d1).toBe(d2);
    const other = Buffer.from('From: a@b\nSubject: x\n\nline one\n');
    expect(messageDigest(other, other.indexOf('\n\n') + 2, hdr)).not.toBe(d1);
  });
});
