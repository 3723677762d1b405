// The server's replies in a logged-in submission session, passed to the client line by line while Postern keeps
// count of where each reply ends (RFC 5321 §4.2.1: `250-…` lines, then `250 …`). Each command sent on is owed one
// reply, and is told it (the audit trail records it; DATA's 354 switches the reader to the message). A client may
// pipeline (RFC 2920), so Postern's own replies (a 502 for BDAT, a 503 for a second AUTH) wait in line for the
// server's replies to the commands before them.

export interface Reply {
  code: number;
  /** The reply's lines without CRLF, joined by a space, each without its code. */
  text: string;
}

type Pending = { own: Buffer } | { onReply: (r: Reply) => void; replace?: Buffer };

/** A reply line longer than this is not SMTP (RFC 5321 §4.5.3.1.5: 512). */
const MAX_LINE = 65_536;
/** The most text kept of a multi-line reply for onReply. */
const MAX_TEXT = 2_000;

export class ReplyStream {
  private readonly queue: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private text: string[] = [];

  constructor(private readonly out: (b: Buffer) => void) {}

  /**
   * A command went to the server; `onReply` hears its reply once the client has it. With `replace`, the client gets
   * that instead of the server's reply (Postern's EHLO reply for the RSET that stands in for EHLO).
   */
  expect(onReply: (r: Reply) => void = () => undefined, replace?: Buffer): void {
    this.queue.push({ onReply, replace });
  }

  /** Postern's own reply, sent once every reply expected before it has been passed on. */
  inject(b: Buffer): void {
    if (this.queue.length) this.queue.push({ own: b });
    else this.out(b);
  }

  push(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf < 0) break;
      const line = this.buf.subarray(0, lf + 1);
      this.buf = this.buf.subarray(lf + 1);
      this.line(line);
    }
    if (this.buf.length > MAX_LINE) throw new Error('submission server sent a reply line longer than 64 KiB');
  }

  private line(raw: Buffer): void {
    const text = raw.toString('latin1').replace(/\r?\n$/, '');
    const m = /^([2-5][0-9]{2})([ -]|$)(.*)$/.exec(text);
    if (!m) throw new Error(`submission server sent a line that is not a reply: ${JSON.stringify(text.slice(0, 100))}`);
    const head = this.queue[0];
    // Nothing expected: a reply the server sends on its own (421 before it closes).
    if (!head || 'own' in head) return this.out(raw);
    if (!head.replace) this.out(raw);
    if (this.text.join(' ').length < MAX_TEXT) this.text.push(m[3]);
    if (m[2] === '-') return;
    this.queue.shift();
    const reply = { code: Number(m[1]), text: this.text.join(' ').slice(0, MAX_TEXT) };
    this.text = [];
    if (head.replace) this.out(head.replace);
    head.onReply(reply);
    while (this.queue.length && 'own' in this.queue[0]) this.out((this.queue.shift() as { own: Buffer }).own);
  }
}
