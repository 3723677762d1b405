// The IMAP command parser against the hostile inputs of reliability.md §3 (IM-01..IM-07, IM-16), each fed whole,
// split at every byte and byte by byte, plus fast-check properties: any split gives the same events, and
// generated commands come back as they were written.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ImapParser, type ImapArg, type ParserLimits } from './parser.ts';

const LIMITS: ParserLimits = { maxLine: 65_536, maxLiteral: 1_000_000, maxNonSyncLiteral: 4096, maxDepthPreAuth: 1 };

interface Opts {
  streaming?: boolean;
  limits?: Partial<ParserLimits>;
  refuse?: string[];
}

/** Feeds the pieces and returns everything the parser said, in order, as readable strings. */
function run(pieces: Buffer[], o: Opts = {}): string[] {
  const out: string[] = [];
  const p: ImapParser = new ImapParser(
    { ...LIMITS, ...o.limits },
    {
      command: (c) => {
        out.push(`CMD ${c.tag} ${c.name}${c.args.length ? ' ' + c.args.map(show).join(' ') : ''}`);
        if (c.name === 'IDLE') p.expectDone();
        if (c.name === 'AUTHENTICATE') p.expectLine();
      },
      error: (e) => out.push(`${e.fatal ? 'FATAL' : 'BAD'} ${e.tag ?? '*'} ${e.kind}${e.code ? ` [${e.code}]` : ''}`),
      continueLiteral: () => out.push('+'),
      line: (b) => out.push(`LINE ${b.toString('latin1')}`),
      head: (tag, name) => (o.refuse?.includes(name) ? 'refused' : undefined),
      segment: (b) => out.push(`SEG ${b.toString('latin1')}`),
      literal: (b) => out.push(`LIT ${b.toString('latin1')}`),
    },
  );
  p.streaming = Boolean(o.streaming);
  for (const piece of pieces) p.feed(piece);
  return merge(out);
}

/** Adjacent literal chunks joined, so that any split reads the same. */
function merge(out: string[]): string[] {
  const m: string[] = [];
  for (const s of out) {
    if (s.startsWith('LIT ') && m.at(-1)?.startsWith('LIT ')) m[m.length - 1] += s.slice(4);
    else m.push(s);
  }
  return m;
}

function show(a: ImapArg): string {
  switch (a.type) {
    case 'atom':
      return a.value;
    case 'quoted':
      return JSON.stringify(a.value.toString('latin1'));
    case 'literal':
      return `{${a.size}${a.sync ? '' : '+'}${a.binary ? '~' : ''}:${JSON.stringify(a.value.toString('latin1'))}}`;
    case 'list':
      return `(${a.items.map(show).join(' ')})`;
  }
}

const b = (s: string) => Buffer.from(s, 'latin1');

/** Parses `input` whole, split in two at every byte, and byte by byte; all must agree. Returns the events. */
function parse(input: string | Buffer, o: Opts = {}): string[] {
  const buf = typeof input === 'string' ? b(input) : input;
  const whole = run([buf], o);
  const step = buf.length > 3000 ? Math.ceil(buf.length / 200) : 1;
  for (let i = 1; i < buf.length; i += step) expect(run([buf.subarray(0, i), buf.subarray(i)], o), `split at ${i}`).toEqual(whole);
  if (buf.length <= 3000) expect(run([...buf].map((x) => Buffer.from([x])), o), 'byte by byte').toEqual(whole);
  return whole;
}

describe('IMAP parser: commands', () => {
  it('reads tags, names, atoms, quoted strings and lists', () => {
    expect(parse('a1 LOGIN alice "se\\"cr\\\\et"\r\nb ID ("name" "x" "version" NIL)\r\n')).toEqual([
      'CMD a1 LOGIN alice "se\\"cr\\\\et"',
      'CMD b ID ("name" "x" "version" NIL)',
    ]);
    // Nested lists are for after login (one open list before it, as Dovecot allows).
    expect(parse('c uid fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)])\r\n', { streaming: true })).toEqual([
      'SEG c uid fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)])\r\n',
      'CMD c UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM) ])',
    ]);
  });

  it('accepts a bare LF as line end and ignores empty lines', () => {
    expect(parse('a NOOP\n\r\nb NOOP\r\n')).toEqual(['CMD a NOOP', 'CMD b NOOP']);
  });

  it('IM-01: answers + to a synchronising literal only once its line is complete, and counts its bytes exactly', () => {
    expect(run([b('a LOGIN {5}')])).toEqual([]);
    expect(parse('a LOGIN {5}\r\nalice {5}\r\nse\r\nt\r\n')).toEqual(['+', '+', 'CMD a LOGIN {5:"alice"} {5:"se\\r\\nt"}']);
  });

  it('IM-02: empty, non-synchronising and binary literals as Dovecot reads them', () => {
    expect(parse('a X {0}\r\n\r\n')).toEqual(['+', 'CMD a X {0:""}']);
    expect(parse('a X {5+}\r\nHello\r\n')).toEqual(['CMD a X {5+:"Hello"}']);
    expect(parse('a X ~{5}\r\nhe\x00lo\r\n')).toEqual(['+', 'CMD a X {5~:"he\\u0000lo"}']);
    expect(parse('a X {6+}\r\nhell\x00o\r\nb NOOP\r\n')).toEqual(['BAD a nul', 'CMD b NOOP']);
    expect(parse('a X {-0}\r\nb NOOP\r\n')).toEqual(['BAD a syntax', 'CMD b NOOP']);
    expect(parse('a X {5} y\r\nb NOOP\r\n')).toEqual(['BAD a syntax', 'CMD b NOOP']);
  });

  it('IM-03: a non-synchronising literal over the LITERAL- limit is skipped exactly; the command inside it never runs', () => {
    const data = 'x'.repeat(2000) + '\r\nb DELETE INBOX\r\n' + 'y'.repeat(5000 - 2000 - 18);
    expect(data.length).toBe(5000);
    for (const streaming of [false, true]) {
      const ev = parse(`a APPEND INBOX {5000+}\r\n${data}\r\nc NOOP\r\n`, { streaming });
      expect(ev).toEqual(streaming ? ['BAD a nonsync_too_big [TOOBIG]', 'SEG c NOOP\r\n', 'CMD c NOOP'] : ['BAD a nonsync_too_big [TOOBIG]', 'CMD c NOOP']);
      expect(ev.join()).not.toContain('DELETE');
    }
  });

  it('IM-03: the rest of a refused command is framed too, literals and all', () => {
    const ev = parse('a APPEND INBOX {5000+}\r\n' + 'z'.repeat(5000) + ' {20+}\r\n\r\nd DELETE INBOX\r\n1\r\nc NOOP\r\n');
    expect(ev).toEqual(['BAD a nonsync_too_big [TOOBIG]', 'CMD c NOOP']);
  });

  it('IM-04: an absurd literal size is refused before a byte is read; as non-synchronising it closes', () => {
    expect(parse('a LOGIN {99999999999999999999}\r\nb NOOP\r\n')).toEqual(['BAD a literal_too_big [TOOBIG]', 'CMD b NOOP']);
    expect(parse('a LOGIN {99999999999999999999+}\r\nb NOOP\r\n')).toEqual(['FATAL a nonsync_too_big']);
    expect(parse('a LOGIN {70000}\r\nb NOOP\r\n')).toEqual(['BAD a literal_too_big [TOOBIG]', 'CMD b NOOP']);
  });

  it('IM-05: deep lists before login are refused at the first nested one', () => {
    expect(parse(`a LOGIN ${'('.repeat(10_000)}\r\nb NOOP\r\n`)).toEqual(['BAD a too_deep', 'CMD b NOOP']);
    expect(parse(`a ID (${'('.repeat(63)}${')'.repeat(64)}\r\n`, { streaming: true })).toHaveLength(2);
    expect(parse(`a X ${'('.repeat(65)}\r\n`, { streaming: true })).toEqual(['BAD a too_deep']);
  });

  it('IM-06: CR without LF is refused, and what follows it on the line never runs', () => {
    expect(parse('a NOOP\rb NOOP\r\nc NOOP\r\n')).toEqual(['BAD a bare_cr', 'CMD c NOOP']);
  });

  it('IM-07: invalid tags get an untagged BAD', () => {
    for (const tag of ['a\x01', 'a\x7f', 'a\x80', 'a(', 'a{', 'a%', 'a*', 'a"', 'a\\', '+', '*', 'a+']) {
      expect(parse(`${tag} NOOP\r\nz NOOP\r\n`), JSON.stringify(tag)).toEqual(['BAD * bad_tag', 'CMD z NOOP']);
    }
    expect(parse('a]b NOOP\r\n')).toEqual(['CMD a]b NOOP']);
    expect(parse('a\r\nb NOOP x\r\nc NO#OP\r\n')).toEqual(['BAD a syntax', 'CMD b NOOP x', 'BAD c syntax']);
  });

  it('refuses NUL and controls outside literals, bad escapes and unbalanced lists', () => {
    expect(parse('a X "a\x00b"\r\nb X a\x01b\r\nc X "a\\nb"\r\nd X (a\r\ne X a)\r\nf X "open\r\n')).toEqual([
      'BAD a nul',
      'BAD b syntax',
      'BAD c syntax',
      'BAD d syntax',
      'BAD e syntax',
      'BAD f syntax',
    ]);
  });

  it('IM-16: a line over max_line is refused with its tag, without buffering it', () => {
    const long = 'a LOGIN ' + 'x'.repeat(100_000) + '\r\nb NOOP\r\n';
    expect(parse(long)).toEqual(['BAD a line_too_long', 'CMD b NOOP']);
    const p = new ImapParser(LIMITS, { command() {}, error() {}, continueLiteral() {}, line() {} });
    p.feed(b('a X ' + 'y'.repeat(1_000_000)));
    expect((p as unknown as { parts: Buffer[] }).parts).toHaveLength(0);
    // A too-long line ending in a non-synchronising literal: its bytes are skipped, not read as commands.
    expect(parse('a X ' + 'x'.repeat(70_000) + ' {18+}\r\nb DELETE INBOX\r\n12\r\nc NOOP\r\n')).toEqual(['BAD a line_too_long', 'CMD c NOOP']);
  });

  it('before login the literals count against max_line', () => {
    expect(parse('a LOGIN {40000}\r\n' + 'u'.repeat(40000) + ' {30000}\r\nb NOOP\r\n')).toEqual(['+', 'BAD a literal_too_big [TOOBIG]', 'CMD b NOOP']);
  });

  it('delivers AUTHENTICATE responses and IDLE DONE as lines, not commands', () => {
    expect(parse('a AUTHENTICATE PLAIN\r\nAGFsaWNlAHB3\r\nb IDLE\r\nDONE\r\nc IDLE\r\nd NOOP\r\n')).toEqual([
      'CMD a AUTHENTICATE PLAIN',
      'LINE AGFsaWNlAHB3',
      'CMD b IDLE',
      'LINE DONE',
      'CMD c IDLE',
      'CMD d NOOP',
    ]);
  });
});

describe('IMAP parser: streaming after login', () => {
  it('hands on segments and literal bytes, synchronising literals made non-synchronising', () => {
    expect(parse('a APPEND INBOX (\\Seen) {12}\r\nhello\r\nworld {3+}\r\nabc\r\n', { streaming: true })).toEqual([
      'SEG a APPEND INBOX (\\Seen) {12+}\r\n',
      '+',
      'LIT hello\r\nworld',
      'SEG  {3+}\r\n',
      'LIT abc',
      'SEG \r\n',
      'CMD a APPEND INBOX (\\Seen) {12:""} {3+:""}',
    ]);
  });

  it('refuses a command by name before a byte of it is handed on', () => {
    expect(parse('a COMPRESS DEFLATE\r\nb APPEND X {3}\r\nc NOOP\r\n', { streaming: true, refuse: ['COMPRESS', 'APPEND'] })).toEqual([
      'BAD a refused',
      'BAD b refused',
      'SEG c NOOP\r\n',
      'CMD c NOOP',
    ]);
  });

  it('an error after part of a command was handed on closes the stream', () => {
    expect(parse('a APPEND X {3}\r\nabc "open\r\nb NOOP\r\n', { streaming: true })).toEqual(['SEG a APPEND X {3+}\r\n', '+', 'LIT abc', 'FATAL a syntax']);
  });

  it('literals up to max_literal stream through', () => {
    const body = 'm'.repeat(200_000);
    const ev = run([b(`a APPEND INBOX {${body.length}}\r\n${body}\r\n`)], { streaming: true });
    expect(ev[2]).toBe(`LIT ${body}`);
  });
});

describe('IMAP parser: properties', () => {
  const atom = fc.stringMatching(/^[A-Za-z0-9.\\:*%[\]-]{1,12}$/);
  const quoted = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n\x00]/g, '').replace(/[\x01-\x1f\x7f-\uffff]/g, '?'));
  const literalData = fc.oneof(fc.string({ maxLength: 30 }).map((s) => s.replace(/[\x00\u0100-\uffff]/g, 'x')), fc.constant('\r\nb DELETE INBOX\r\n'));
  type Gen = { text: string; show: string };
  const arg: fc.Arbitrary<Gen> = fc.oneof(
    atom.map((a) => ({ text: a, show: a })),
    quoted.map((q) => ({ text: `"${q.replace(/[\\"]/g, '\\$&')}"`, show: JSON.stringify(q) })),
    fc.tuple(literalData, fc.boolean()).map(([d, sync]) => ({
      text: `{${d.length}${sync ? '' : '+'}}\r\n${d}`,
      show: `{${d.length}${sync ? '' : '+'}:${JSON.stringify(d)}}`,
    })),
  );
  const command = fc.tuple(fc.stringMatching(/^[A-Za-z0-9]{1,6}$/), fc.constantFrom('LOGIN', 'SELECT', 'X'), fc.array(arg, { maxLength: 4 }));

  it('generated commands come back as written, whatever the split', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), (cmds, cuts) => {
        const text = cmds.map(([tag, name, args]) => `${tag} ${name}${args.map((a) => ' ' + a.text).join('')}\r\n`).join('');
        const want = cmds.flatMap(([tag, name, args]) => [
          ...args.filter((a) => /^\{\d+:/.test(a.show)).map(() => '+'),
          `CMD ${tag} ${name}${args.map((a) => ' ' + a.show).join('')}`,
        ]);
        const buf = b(text);
        const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((x, y) => x - y);
        const pieces = [0, ...at].map((s, i, all) => buf.subarray(s, all[i + 1] ?? buf.length));
        const got = run(pieces);
        const sorted = (xs: string[]) => xs.filter((x) => x !== '+');
        expect(sorted(got)).toEqual(sorted(want));
        expect(got.filter((x) => x === '+').length).toBe(want.filter((x) => x === '+').length);
      }),
      { numRuns: 300 },
    );
  });

  it('any bytes, split anywhere, give the same events and never throw', () => {
    const junk = fc.array(fc.oneof(fc.constantFrom('a ', 'NOOP', '{', '}', '{5}', '{3+}', '~{2}', '\r', '\n', '\r\n', '"', '\\', '(', ')', ' ', '\x00', 'x'), fc.string({ maxLength: 4 })), { maxLength: 40 });
    fc.assert(
      fc.property(junk, fc.array(fc.nat(), { maxLength: 5 }), fc.boolean(), (parts, cuts, streaming) => {
        const buf = b(parts.join(''));
        const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((x, y) => x - y);
        const pieces = [0, ...at].map((s, i, all) => buf.subarray(s, all[i + 1] ?? buf.length));
        expect(run(pieces, { streaming })).toEqual(run([buf], { streaming }));
      }),
      { numRuns: 500 },
    );
  });
});
