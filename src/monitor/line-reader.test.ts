// The shared command-line framer: line ends, the overlong-line boundary, bare CR and NUL, pause and discard, and
// that any split of the input into pieces reads the same.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineReader } from './line-reader.ts';

const TEXTS = { line_too_long: 'long', bare_cr: 'cr', nul: 'nul' } as const;

function reader(maxLine: number, out: string[]): LineReader {
  return new LineReader(maxLine, { line: (b) => out.push(`LINE ${b.toString('latin1')}`), error: (kind, text) => out.push(`ERR ${kind} ${text}`) }, TEXTS);
}

function read(pieces: (string | Buffer)[], maxLine = 16): string[] {
  const out: string[] = [];
  const r = reader(maxLine, out);
  for (const p of pieces) r.feed(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  return out;
}

describe('LineReader', () => {
  it('splits at CRLF and at a bare LF, one CR stripped, a line across feeds joined', () => {
    expect(read(['A\r\nB\nC\r', '\n', 'D', 'E\r\n\r\n'])).toEqual(['LINE A', 'LINE B', 'LINE C', 'LINE DE', 'LINE ']);
  });

  it('takes maxLine octets with CRLF, refuses one more, with a bare LF too', () => {
    const ok = 'x'.repeat(14);
    expect(read([`${ok}\r\n`, `${ok}\n`])).toEqual([`LINE ${ok}`, `LINE ${ok}`]);
    expect(read([`${ok}y\r\nA\r\n`, `${ok}y\nB\n`])).toEqual(['ERR line_too_long long', 'LINE A', 'ERR line_too_long long', 'LINE B']);
  });

  it('refuses an overlong line once, holds none of it and drops its rest across feeds', () => {
    const out: string[] = [];
    const r = reader(16, out);
    r.feed(Buffer.alloc(20, 0x61));
    expect(r.buffered).toBe(0);
    r.feed(Buffer.alloc(1000, 0x61));
    r.feed(Buffer.from('bbb\r'));
    expect(r.buffered).toBe(0);
    r.feed(Buffer.from('\nNEXT\r\n'));
    expect(out).toEqual(['ERR line_too_long long', 'LINE NEXT']);
  });

  it('refuses a bare CR and a NUL, the whole line', () => {
    expect(read(['A\rB\r\n', 'C\0D\r\n', 'E\r\r\n', 'F\r\n'])).toEqual(['ERR bare_cr cr', 'ERR nul nul', 'ERR bare_cr cr', 'LINE F']);
  });

  it('holds lines while paused, and drops them on discardBuffered', () => {
    const out: string[] = [];
    const r = reader(16, out);
    r.pause();
    r.feed(Buffer.from('A\r\nB\r\n'));
    expect(out).toEqual([]);
    expect(r.buffered).toBe(6);
    r.resume();
    expect(out).toEqual(['LINE A', 'LINE B']);
    r.pause();
    r.feed(Buffer.from('C\r\nD'));
    expect(r.discardBuffered()).toBe(4);
    r.resume();
    r.feed(Buffer.from('E\r\n'));
    expect(out).toEqual(['LINE A', 'LINE B', 'LINE E']);
  });

  it('reads the same for any split of the input into feeds', () => {
    // Mostly line ends, CR, NUL and a few letters, so that short and overlong lines both occur at maxLine 8.
    const byte = fc.oneof(fc.constantFrom(0x0a, 0x0d, 0x00, 0x41, 0x42), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 120 }), fc.array(fc.nat(120), { maxLength: 10 }), (bytes, cuts) => {
        const input = Buffer.from(bytes);
        const at = [...new Set(cuts.filter((c) => c > 0 && c < input.length))].sort((a, b) => a - b);
        const pieces = [0, ...at].map((from, i) => input.subarray(from, i < at.length ? at[i] : input.length));
        expect(read(pieces, 8)).toEqual(read([input], 8));
      }),
    );
  });
});
