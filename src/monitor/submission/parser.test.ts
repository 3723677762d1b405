// The submission command reader, the message scanner and the reply framer against hostile inputs (long lines, bare
// CR and LF, a dot line that only one reader would see, pipelined commands behind a message), each fed whole,
// split at every byte and byte by byte: any split must read the same.
import { describe, expect, it } from 'vitest';
import { checkPath, postLoginKeywords, preLoginKeywords } from './commands.ts';
import { DataScanner } from './data.ts';
import { SmtpReader } from './parser.ts';
import { ReplyStream } from './replies.ts';

function splits(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [[input]];
  for (let i = 1; i < input.length; i++) out.push([input.subarray(0, i), input.subarray(i)]);
  out.push([...input].map((b) => Buffer.from([b])));
  return out;
}

/** Reads `pieces`; a line `DATA` switches to a message, as the server's 354 would. */
function read(pieces: Buffer[], maxLine = 64): string[] {
  const out: string[] = [];
  let msg = '';
  const r: SmtpReader = new SmtpReader(maxLine, {
    line: (b) => {
      out.push(`LINE ${b.toString('latin1')}`);
      if (b.toString() === 'DATA') r.startData();
    },
    error: (kind) => out.push(`ERR ${kind}`),
    data: (b) => void (msg += b.toString('latin1')),
    dataEnd: (scan) => {
      out.push(`MSG ${JSON.stringify(msg)} size=${scan.size} id=${scan.messageId()} normalised=${scan.normalised}`);
      msg = '';
    },
  });
  for (const p of pieces) r.feed(p);
  return out;
}

function readAll(input: string, maxLine = 64): string[] {
  const [first, ...rest] = splits(Buffer.from(input, 'latin1')).map((p) => read(p, maxLine));
  for (const x of rest) expect(x).toEqual(first);
  return first;
}

describe('SmtpReader', () => {
  it('frames lines, refuses long lines, bare CR and NUL, and reads on after them', () => {
    expect(readAll(`EHLO a\r\nNOOP\nMAIL ${'x'.repeat(100)}\r\nRSET\r\nNO\rOP\r\nA\0B\r\nQUIT\r\n`)).toEqual([
      'LINE EHLO a',
      'LINE NOOP',
      'ERR line_too_long',
      'LINE RSET',
      'ERR bare_cr',
      'ERR nul',
      'LINE QUIT',
    ]);
  });

  it('passes a message through, ends it at the dot line and reads the commands pipelined behind it', () => {
    const msg = 'Subject: x\r\nMessage-ID:\r\n <id-1@example.org>\r\n\r\n..stuffed\r\nbody\r\n.\r\n';
    expect(readAll(`DATA\r\n${msg}RSET\r\nQUIT\r\n`)).toEqual([
      'LINE DATA',
      `MSG ${JSON.stringify(msg)} size=${msg.length - 4} id=<id-1@example.org> normalised=0`,
      'LINE RSET',
      'LINE QUIT',
    ]);
  });

  it('makes bare LF and bare CR CRLF, so the server ends the message where Postern does (SMTP smuggling)', () => {
    // `\n.\n` and `\r.\r` would end the message for some readers and not others; normalised, both are the end here.
    expect(readAll('DATA\r\nSubject: a\n\nbody\n.\nMAIL FROM:<x@y>\r\n')).toEqual([
      'LINE DATA',
      `MSG ${JSON.stringify('Subject: a\r\n\r\nbody\r\n.\r\n')} size=20 id=null normalised=4`,
      'LINE MAIL FROM:<x@y>',
    ]);
    expect(readAll('DATA\r\nbody\r.\rRSET\r\n')[1]).toBe(`MSG ${JSON.stringify('body\r\n.\r\n')} size=6 id=null normalised=2`);
    // An empty message.
    expect(readAll('DATA\r\n.\r\nQUIT\r\n')).toEqual(['LINE DATA', 'MSG ".\\r\\n" size=0 id=null normalised=0', 'LINE QUIT']);
  });

  it('message lines are not bound by the command line limit', () => {
    const long = 'y'.repeat(500);
    expect(readAll(`DATA\r\n${long}\r\n.\r\n`, 64)[1]).toBe(`MSG ${JSON.stringify(`${long}\r\n.\r\n`)} size=502 id=null normalised=0`);
  });
});

describe('DataScanner', () => {
  it('finds the Message-ID only in the header block', () => {
    const s = new DataScanner();
    s.push(Buffer.from('Subject: a\r\n\r\nMessage-ID: <body@example.org>\r\n.\r\n'));
    expect(s.messageId()).toBeNull();
  });
});

describe('submission commands', () => {
  it('checks MAIL FROM and RCPT TO, keeping only the parameters Postern offers', () => {
    expect(checkPath('MAIL', 'FROM:<alice@example.org> body=8bitmime SIZE=1000')).toEqual({ ok: true, line: 'MAIL FROM:<alice@example.org> BODY=8BITMIME SIZE=1000', address: 'alice@example.org' });
    expect(checkPath('MAIL', 'from: <>')).toMatchObject({ ok: true, line: 'MAIL FROM:<>' });
    expect(checkPath('RCPT', 'TO:<>')).toMatchObject({ ok: false, kind: 'syntax' });
    expect(checkPath('RCPT', 'TO:<"a b"@example.org>')).toMatchObject({ ok: false, kind: 'syntax' });
    expect(checkPath('RCPT', 'TO:<a@example.org> NOTIFY=NEVER')).toMatchObject({ ok: false, kind: 'refused' });
    expect(checkPath('MAIL', 'FROM:alice@example.org')).toMatchObject({ ok: false, kind: 'syntax' });
    expect(checkPath('MAIL', 'TO:<a@b>')).toMatchObject({ ok: false, kind: 'syntax' });
  });

  it('offers AUTH only where allowed and STARTTLS only before TLS; after login only what the server has too', () => {
    expect(preLoginKeywords({ tls: false, starttls: true, auth: false })).toEqual(['SIZE', 'PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'STARTTLS']);
    expect(preLoginKeywords({ tls: true, starttls: true, auth: true })).toEqual(['SIZE', 'PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN']);
    expect(postLoginKeywords(['8BITMIME', 'AUTH PLAIN', 'BURL imap', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'SIZE 10240000', 'PIPELINING', 'XCLIENT ADDR'])).toEqual([
      'SIZE 10240000',
      'PIPELINING',
      '8BITMIME',
      'ENHANCEDSTATUSCODES',
    ]);
  });
});

describe('ReplyStream', () => {
  it('frames multi-line replies, tells each command its reply, and queues Postern\'s own in turn', () => {
    const server = Buffer.from('250-first\r\n250 second\r\n550 5.1.1 no\r\n354 go\r\n');
    for (const p of splits(server)) {
      let out = '';
      const heard: string[] = [];
      const rs = new ReplyStream((b) => (out += b.toString('latin1')));
      rs.expect((r) => heard.push(`${r.code} ${r.text}`), Buffer.from('<ehlo>'));
      rs.inject(Buffer.from('<own>'));
      rs.expect((r) => heard.push(`${r.code} ${r.text}`));
      rs.expect((r) => heard.push(`${r.code} ${r.text}`));
      for (const x of p) rs.push(x);
      expect(out).toBe('<ehlo><own>550 5.1.1 no\r\n354 go\r\n');
      expect(heard).toEqual(['250 first second', '550 5.1.1 no', '354 go']);
    }
  });
});
