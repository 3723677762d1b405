// Property tests of the DATA reader: whatever the bytes and however the socket cuts them, the reader finds the
// same end of data, passes on the same unstuffed message, raises the same flags, never passes on more than the
// size limit, and hands what follows the terminator back to the command parser.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PosternStream, type DataFlags, type DataStream } from './data-reader.ts';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

interface Run {
  body: Buffer;
  /** Whether the data stream ended (the terminator was found). */
  ended: boolean;
  byteLength: number;
  sizeExceeded: boolean;
  flags: Omit<DataFlags, 'beforeGo'>;
  /** Every command line the parser dispatched, DATA included. */
  commands: string[];
}

/** Feeds the chunks to a fresh reader; a DATA command switches it to data mode with `maxBytes`. */
function feed(chunks: Buffer[], maxBytes?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const reader = new PosternStream();
    const commands: string[] = [];
    const out: Buffer[] = [];
    let stream: DataStream | null = null;
    let ended = false;
    reader.oncommand = (command: Buffer, callback?: () => void) => {
      const line = command.toString('latin1');
      commands.push(line);
      if (line === 'DATA') {
        const s = reader.startDataMode(maxBytes);
        stream = s;
        s.on('data', (c: Buffer) => out.push(c));
        s.on('end', () => {
          ended = true;
          reader.continue();
        });
      }
      callback?.();
    };
    reader.on('error', reject);
    reader.on('finish', () => {
      const s = stream as DataStream | null;
      const { beforeGo: _ignored, ...flags } = s ? s.flags : ({ beforeGo: false } as DataFlags);
      resolve({ body: Buffer.concat(out), ended, byteLength: s?.byteLength ?? 0, sizeExceeded: s?.sizeExceeded ?? false, flags, commands });
    });
    for (const c of chunks) reader.write(c);
    reader.end();
  });
}

/**
 * The reader's rule, written plainly: a line starts at the beginning of the data or after CRLF; a dot that starts
 * a line is the end of data when CRLF follows it, and is otherwise removed (RFC 5321 4.5.2).
 */
function reference(wire: Buffer): { body: Buffer; rest: Buffer } | null {
  const out: number[] = [];
  for (let i = 0; i < wire.length; i++) {
    const lineStart = i === 0 || (wire[i - 2] === CR && wire[i - 1] === LF);
    if (lineStart && wire[i] === DOT) {
      if (wire[i + 1] === CR && wire[i + 2] === LF) return { body: Buffer.from(out), rest: wire.subarray(i + 3) };
      continue;
    }
    out.push(wire[i]);
  }
  return null;
}

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of [...at, buf.length]) {
    if (c > from) parts.push(buf.subarray(from, c));
    from = Math.max(from, c);
  }
  return parts;
}

/** Message bytes rich in the octets that matter: CR, LF, dot, NUL, 8-bit. */
const hostileBytes = fc
  .array(
    fc.oneof(
      { arbitrary: fc.constantFrom(CR, LF, DOT), weight: 6 },
      { arbitrary: fc.constantFrom(0x61, 0x20, 0x00, 0xe9), weight: 3 },
      { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 },
    ),
    { maxLength: 120 },
  )
  .map((a) => Buffer.from(a));
const cuts = fc.array(fc.nat(), { maxLength: 12 });
const bytes = (s: string) => Buffer.from(s, 'latin1');

describe('PosternStream (DATA reader)', () => {
  it('finds the same end of data and passes on the same message for every chunking, as the reference rule says', async () => {
    await fc.assert(
      fc.asyncProperty(hostileBytes, cuts, async (data, at) => {
        // A terminator is always there at the end; the data may hold an earlier one.
        const wire = Buffer.concat([bytes('DATA\r\n'), data, bytes('\r\n.\r\nQUIT\r\n')]);
        const whole = await feed([wire]);
        const cut = await feed(split(wire, at));
        const ref = reference(Buffer.concat([data, bytes('\r\n.\r\nQUIT\r\n')]))!;
        expect(cut.ended).toBe(true);
        expect(cut.body.equals(ref.body), `${JSON.stringify(cut.body.toString('latin1'))} vs ${JSON.stringify(ref.body.toString('latin1'))}`).toBe(true);
        expect(cut.byteLength).toBe(ref.body.length);
        expect(cut.flags).toEqual(whole.flags);
        expect(cut.commands).toEqual(whole.commands);
        expect(cut.commands[0]).toBe('DATA');
        expect(cut.commands.at(-1)).toBe('QUIT');
      }),
      { numRuns: 500 },
    );
  });

  it('returns dot-stuffed CRLF lines exactly, with no flags, however the terminator is cut', async () => {
    const line = fc.stringMatching(/^[a-z. :]{0,12}$/);
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 10 }), cuts, async (lines, at) => {
        const body = lines.map((l) => `${l}\r\n`).join('');
        const stuffed = lines.map((l) => `${l.startsWith('.') ? '.' : ''}${l}\r\n`).join('');
        const run = await feed(split(bytes(`DATA\r\n${stuffed}.\r\nQUIT\r\n`), at));
        expect(run.body.toString('latin1')).toBe(body);
        expect(run.flags).toEqual({ bareLf: 0, bareCr: 0, smuggling: false, nul: false, eightBit: false });
        expect(run.commands).toEqual(['DATA', 'QUIT']);
      }),
      { numRuns: 300 },
    );
  });

  it('splits the terminator at every offset without losing or adding a byte', async () => {
    const wire = bytes('DATA\r\nSubject: x\r\n\r\nlast line\r\n.\r\nQUIT\r\n');
    const end = wire.indexOf('\r\n.\r\n');
    for (let k = end - 2; k <= end + 6; k++) {
      for (let j = k; j <= end + 6; j++) {
        const run = await feed(split(wire, [k, j]));
        expect(run.body.toString('latin1')).toBe('Subject: x\r\n\r\nlast line\r\n');
        expect(run.commands).toEqual(['DATA', 'QUIT']);
      }
    }
  });

  it('never treats a lone dot between line ends other than CRLF as the end, and flags it, whatever the split', async () => {
    const tail = 'MAIL FROM:<admin@victim.example>\r\nRCPT TO:<u@victim.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n';
    const endings = ['\n.\n', '\n.\r\n', '\r.\r\n', '\r.\r', '\r.\n', '\n.\r', '\r\n.\n'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endings), cuts, async (ending, at) => {
        const run = await feed(split(bytes(`DATA\r\nline1${ending}${tail}QUIT\r\n`), at));
        expect(run.flags.smuggling).toBe(true);
        // The smuggled commands stayed inside the message; only QUIT follows it.
        expect(run.commands).toEqual(['DATA', 'QUIT']);
        expect(run.body.toString('latin1')).toContain('MAIL FROM:<admin@victim.example>\r\n');
      }),
      { numRuns: 200 },
    );
    const nul = await feed([bytes(`DATA\r\nline1\r\n\x00.\r\n${tail}QUIT\r\n`)]);
    expect(nul.flags).toMatchObject({ nul: true, smuggling: false });
    expect(nul.commands).toEqual(['DATA', 'QUIT']);
  });

  it('passes on at most the size limit, counts every byte, and still finds the end', async () => {
    await fc.assert(
      fc.asyncProperty(hostileBytes, fc.integer({ min: 1, max: 150 }), cuts, async (data, max, at) => {
        const wire = Buffer.concat([bytes('DATA\r\n'), data, bytes('\r\n.\r\nQUIT\r\n')]);
        const ref = reference(Buffer.concat([data, bytes('\r\n.\r\nQUIT\r\n')]))!;
        const run = await feed(split(wire, at), max);
        expect(run.body.length).toBeLessThanOrEqual(max);
        expect(ref.body.subarray(0, run.body.length).equals(run.body)).toBe(true);
        expect(run.body.length).toBe(Math.min(max, ref.body.length));
        expect(run.byteLength).toBe(ref.body.length);
        expect(run.sizeExceeded).toBe(ref.body.length > max);
        expect(run.commands.at(-1)).toBe('QUIT');
      }),
      { numRuns: 300 },
    );
  });

  it('removes the stuffing dot from every line that starts with one (S-10)', async () => {
    const run = await feed([bytes('DATA\r\n.From: x\r\n..x\r\n..\r\n.This is stuffy.\r\n.\r\n')]);
    expect(run.body.toString('latin1')).toBe('From: x\r\n.x\r\n.\r\nThis is stuffy.\r\n');
  });
});
