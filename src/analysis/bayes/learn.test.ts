// Line-end normalisation of stored messages: every bare CR or LF becomes CRLF, and nothing else changes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toCrlf } from './learn.ts';

/** The definition, on a latin-1 string of the bytes. */
const reference = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');

describe('toCrlf', () => {
  it('turns bare CR and bare LF into CRLF and keeps every other byte', () => {
    const bytes = fc.array(fc.oneof(fc.constantFrom(10, 13, 13, 10), fc.integer({ min: 0, max: 255 })), { maxLength: 200 });
    fc.assert(
      fc.property(bytes, (list) => {
        const b = Buffer.from(list);
        expect(toCrlf(b).equals(reference(b))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('returns the same buffer when every line already ends in CRLF', () => {
    const b = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    expect(toCrlf(b)).toBe(b);
    expect(toCrlf(Buffer.from('a\n\rb\r')).toString('latin1')).toBe('a\r\n\r\nb\r\n');
  });
});
