// The server-to-client stream of a logged-in session: CAPABILITY rewritten wherever it appears as a response,
// never inside a literal, and Postern's own lines kept out of the middle of a response; any split reads the same.
import { describe, expect, it } from 'vitest';
import { ResponseStream } from './responses.ts';
import { clientCapabilities } from './wire.ts';

function run(pieces: string[], inject: { after: number; line: string }[] = []): string {
  let out = '';
  const r = new ResponseStream((b) => (out += b.toString('latin1')), (caps) => clientCapabilities(caps, 4096));
  pieces.forEach((p, i) => {
    r.push(Buffer.from(p, 'latin1'));
    for (const x of inject.filter((x) => x.after === i)) r.inject(Buffer.from(x.line, 'latin1'));
  });
  return out;
}

const body = 'Subject: x\r\n\r\n* CAPABILITY IMAP4rev1 COMPRESS=DEFLATE\r\na OK [CAPABILITY COMPRESS=DEFLATE] fake\r\n';
const stream = `* CAPABILITY IMAP4rev1 LITERAL+ COMPRESS=DEFLATE IDLE\r\n* 1 FETCH (BODY[] {${body.length}}\r\n${body} FLAGS (\\Seen))\r\nb OK [CAPABILITY IMAP4rev1 STARTTLS LITERAL+ MOVE] Done {5}\r\n* 2 EXISTS\r\n`;
const want = `* CAPABILITY IMAP4rev1 LITERAL- IDLE\r\n* 1 FETCH (BODY[] {${body.length}}\r\n${body} FLAGS (\\Seen))\r\nb OK [CAPABILITY IMAP4rev1 LITERAL- MOVE] Done {5}\r\n* 2 EXISTS\r\n`;

describe('ResponseStream', () => {
  it('rewrites CAPABILITY responses, not literal contents, and a status line never opens a literal', () => {
    expect(run([stream])).toBe(want);
  });

  it('reads the same at every split', () => {
    for (let i = 1; i < stream.length; i++) expect(run([stream.slice(0, i), stream.slice(i)]), `split at ${i}`).toBe(want);
  });

  it('puts an injected line between responses, never inside one', () => {
    const cut = stream.indexOf('Subject');
    const out = run([stream.slice(0, cut), stream.slice(cut)], [{ after: 0, line: '+ Ready\r\n' }]);
    expect(out).toBe(want.replace('FLAGS (\\Seen))\r\n', 'FLAGS (\\Seen))\r\n+ Ready\r\n'));
  });

  it('passes a huge line through without holding it', () => {
    let out = '';
    const r = new ResponseStream((b) => (out += b.toString('latin1')), (c) => c);
    const big = '* SEARCH ' + '1 '.repeat(100_000);
    r.push(Buffer.from(big));
    expect(out.length).toBe(big.length);
    r.push(Buffer.from('\r\n'));
    expect(out).toBe(big + '\r\n');
  });
});
