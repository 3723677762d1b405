// The command-line framer of the line protocols in front of the mailbox server (POP3, submission): splits the
// client's bytes into lines the way the server will (CRLF, or a bare LF as Dovecot also takes), and refuses a bare CR,
// a NUL and an overlong line whole, without buffering the overlong one. Each protocol gives its own error texts;
// SMTP also reads a message as raw bytes after its 354, through takeRaw(). IMAP frames commands with literals and
// has its own parser (imap/parser.ts).

export type LineErrorKind = 'line_too_long' | 'bare_cr' | 'nul';

export interface LineSink {
  /** A complete line without its CRLF. */
  line(b: Buffer): void;
  /** A line that is refused whole; nothing of it is delivered. */
  error(kind: LineErrorKind, text: string): void;
}

/** What the client is told for each refused line, in the protocol's own words. */
export type LineErrorTexts = Readonly<Record<LineErrorKind, string>>;

/** What takeRaw() did with the bytes it was offered. */
export interface RawTaken {
  /** Octets used, from the start of the buffer. */
  used: number;
  /** Raw reading ended: lines follow. Otherwise the reader waits for more bytes. */
  done: boolean;
}

const EMPTY = Buffer.alloc(0);

export class LineReader {
  private buf: Buffer = EMPTY;
  /** Dropping the rest of a line already refused as too long. */
  private skipping = false;
  private paused = false;

  constructor(
    /**
     * Longest line, CRLF included. A line is counted as it is passed on to the server, with CRLF even when it came
     * with a bare LF, so its content may be maxLine - 2 octets. A session may change it between lines.
     */
    public maxLine: number,
    private readonly sink: LineSink,
    private readonly texts: LineErrorTexts,
  ) {}

  /** Octets held, not yet delivered. */
  get buffered(): number {
    return this.buf.length;
  }

  feed(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.drain();
  }

  /** Holds input from here (a login in progress, STARTTLS) until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.drain();
  }

  /** Drops everything held (what came after STARTTLS in the clear) and returns how many octets that was. */
  discardBuffered(): number {
    const n = this.buf.length;
    this.buf = EMPTY;
    this.skipping = false;
    return n;
  }

  /** Input that is not lines (SMTP's message) is taken here ahead of line framing; null takes nothing. */
  protected takeRaw(_buf: Buffer): RawTaken | null {
    return null;
  }

  private refuse(kind: LineErrorKind): void {
    this.sink.error(kind, this.texts[kind]);
  }

  private drain(): void {
    while (!this.paused && this.buf.length) {
      const raw = this.takeRaw(this.buf);
      if (raw) {
        this.buf = this.buf.subarray(raw.used);
        if (!raw.done) return;
        continue;
      }
      const lf = this.buf.indexOf(0x0a);
      if (this.skipping) {
        if (lf < 0) {
          this.buf = EMPTY;
          return;
        }
        this.buf = this.buf.subarray(lf + 1);
        this.skipping = false;
        continue;
      }
      // maxLine - 2 octets of content and a CR still fit; maxLine octets without an LF cannot become a line.
      if (lf < 0) {
        if (this.buf.length >= this.maxLine) {
          this.buf = EMPTY;
          this.skipping = true;
          this.refuse('line_too_long');
        }
        return;
      }
      let line = this.buf.subarray(0, lf);
      this.buf = this.buf.subarray(lf + 1);
      if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      // A bare CR could end the line for another reader (SMTP smuggling's cousin); a NUL ends C strings.
      if (line.length > this.maxLine - 2) this.refuse('line_too_long');
      else if (line.includes(0x0d)) this.refuse('bare_cr');
      else if (line.includes(0)) this.refuse('nul');
      else this.sink.line(line);
    }
  }
}
