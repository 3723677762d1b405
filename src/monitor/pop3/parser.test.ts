// The POP3 command reader and the response framer against the hostile inputs of reliability.md §4 (PO-01..PO-04),
// each fed whole, split at every byte and byte by byte: any split must read the same.
import { describe, expect, it } from 'vitest';
import { checkTransaction, clientCapabilities } from './commands.ts';
import { parseCommand, Pop3Reader } from './parser.ts';
import { ResponseStream } from './responses.ts';

/** Every way to cut `input`: whole, at each single byte, and byte by byte. */
function splits(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [[input]];
  for (let i = 1; i < input.length; i++) out.push([input.subarray(0, i), input.subarray(i)]);
  out.push([...input].map((b) => Buffer.from([b])));
  return out;
}

function read(pieces: Buffer[], maxLine = 255): string[] {
  const out: string[] = [];
  const r = new Pop3Reader(maxLine, { line: (b) => out.push(`LINE ${b.toString('latin1')}`), error: (kind) => out.push(`ERR ${kind}`) });
  for (const p of pieces) r.feed(p);
  return out;
}

/** The reader's output for `input`, checked to be the same for every split. */
function readAll(input: string | Buffer, maxLine = 255): string[] {
  const buf = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const [first, ...rest] = splits(buf).map((p) => read(p, maxLine));
  for (const r of rest) expect(r).toEqual(first);
  return first;
}

describe('Pop3Reader', () => {
  it('frames CRLF and bare LF lines', () => {
    expect(readAll('USER alice\r\nPASS my secret pass\r\nSTAT\nQUIT\r\n')).toEqual(['LINE USER alice', 'LINE PASS my secret pass', 'LINE STAT', 'LINE QUIT']);
  });

  it('refuses a line of 256 octets or more, without delivering any of it, and goes on after it (PO-01)', () => {
    const ok = `USER ${'a'.repeat(255 - 7)}\r\n`;
    expect(ok.length).toBe(255);
    expect(readAll(ok)).toEqual([`LINE ${ok.slice(0, -2)}`]);
    expect(readAll(`USER ${'a'.repeat(249)}\r\nNOOP\r\n`)).toEqual(['ERR line_too_long', 'LINE NOOP']);
    expect(readAll(`USER ${'a'.repeat(5000)}\r\nQUIT\r\n`)).toEqual(['ERR line_too_long', 'LINE QUIT']);
    // Without its LF: refused once the limit is passed, not buffered.
    const r = new Pop3Reader(255, { line: () => undefined, error: () => undefined });
    r.feed(Buffer.alloc(100_000, 0x61));
    expect(r.buffered).toBe(0);
  });

  it('refuses a bare CR and a NUL; the rest of that line never runs', () => {
    expect(readAll('NOOP\rQUIT\r\nSTAT\r\n')).toEqual(['ERR bare_cr', 'LINE STAT']);
    expect(readAll('USER a\0b\r\nSTAT\r\n')).toEqual(['ERR nul', 'LINE STAT']);
  });

  it('holds lines while paused and drops them on discard (PO-02)', () => {
    const out: string[] = [];
    const r: Pop3Reader = new Pop3Reader(255, {
      line: (b) => {
        out.push(b.toString());
        if (b.toString() === 'STLS') r.pause();
      },
      error: () => undefined,
    });
    r.feed(Buffer.from('CAPA\r\nSTLS\r\nUSER victim\r\nPASS x\r\n'));
    expect(out).toEqual(['CAPA', 'STLS']);
    expect(r.discardBuffered()).toBe('USER victim\r\nPASS x\r\n'.length);
    r.resume();
    r.feed(Buffer.from('CAPA\r\n'));
    expect(out).toEqual(['CAPA', 'STLS', 'CAPA']);
  });
});

describe('POP3 commands', () => {
  it('parses the name case-insensitively and keeps PASS\'s remainder whole (PO-03)', () => {
    const c = parseCommand(Buffer.from('pass my secret  pass '));
    expect(c.name).toBe('PASS');
    expect(c.rest.toString()).toBe('my secret  pass ');
    expect(parseCommand(Buffer.from('TOP 1 10')).args).toEqual(['1', '10']);
    expect(parseCommand(Buffer.alloc(0)).name).toBe('');
  });

  it('checks TRANSACTION commands and re-serialises them', () => {
    expect(checkTransaction(parseCommand(Buffer.from('retr 1')))).toEqual({ ok: true, line: 'RETR 1', multiline: true });
    expect(checkTransaction(parseCommand(Buffer.from('LIST')))).toMatchObject({ ok: true, multiline: true });
    expect(checkTransaction(parseCommand(Buffer.from('LIST 2')))).toMatchObject({ ok: true, multiline: false });
    expect(checkTransaction(parseCommand(Buffer.from('STAT ')))).toMatchObject({ ok: true, line: 'STAT' });
    expect(checkTransaction(parseCommand(Buffer.from('RETR x')))).toMatchObject({ ok: false, kind: 'syntax' });
    expect(checkTransaction(parseCommand(Buffer.from('RETR 1 2')))).toMatchObject({ ok: false, kind: 'syntax' });
    expect(checkTransaction(parseCommand(Buffer.from('TOP 1')))).toMatchObject({ ok: false, kind: 'syntax' });
    expect(checkTransaction(parseCommand(Buffer.from('XCLIENT ADDR=1.2.3.4')))).toMatchObject({ ok: false, kind: 'unknown_command' });
    expect(checkTransaction(parseCommand(Buffer.from('USER bob')))).toMatchObject({ ok: false, kind: 'refused' });
  });

  it('withholds the login capabilities and XCLIENT from the server\'s list (PO-05, PO-08)', () => {
    expect(clientCapabilities(['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'STLS', 'USER', 'SASL PLAIN LOGIN', 'XCLIENT', 'AUTH-RESP-CODE'])).toEqual(['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING']);
  });
});

describe('ResponseStream', () => {
  /** Runs server bytes through a stream that expects `expects` answers, with Postern's own answer after each. */
  function frame(pieces: Buffer[], expects: boolean[]): string {
    let out = '';
    const rs = new ResponseStream((b) => (out += b.toString('latin1')));
    expects.forEach((m, i) => {
      rs.expect(m);
      rs.inject(Buffer.from(`<own${i}>`));
    });
    for (const p of pieces) rs.push(p);
    return out;
  }

  it('passes bytes unchanged and ends a body only on a line of one dot (PO-04)', () => {
    const body = '+OK 40 octets\r\nSubject: x\r\n\r\n..\r\n..x\r\n.\r.\r\n\r\n.\r\n';
    const server = Buffer.from(`${body}-ERR no such message\r\n+OK\r\n.\r\n`, 'latin1');
    const want = `${body}<own0>-ERR no such message\r\n<own1>+OK\r\n.\r\n<own2>`;
    for (const p of splits(server)) expect(frame(p, [true, true, true])).toBe(want);
  });

  it('a single-line answer ends at its line, even when a multi-line one was possible', () => {
    const server = Buffer.from('-ERR no such message\r\n+OK 2 320\r\n');
    for (const p of splits(server)) expect(frame(p, [true, false])).toBe('-ERR no such message\r\n<own0>+OK 2 320\r\n<own1>');
  });

  it('Postern\'s own answer goes out at once when nothing is owed', () => {
    let out = '';
    const rs = new ResponseStream((b) => (out += b.toString()));
    rs.inject(Buffer.from('-ERR Unknown command.\r\n'));
    expect(out).toBe('-ERR Unknown command.\r\n');
  });
});
