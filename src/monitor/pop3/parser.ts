// The POP3 command reader: frames the client's bytes into lines the way the server will (CRLF, or a bare LF as
// Dovecot also takes), refuses a bare CR, a NUL and an overlong line without buffering it, and splits each line
// into a command name and arguments (RFC 1939 §3, RFC 2449 §4). Written by hand because no library reads the
// client side of POP3; the line is the whole grammar.

export type LineErrorKind = 'line_too_long' | 'bare_cr' | 'nul';

export interface LineSink {
  /** A complete line without its CRLF. */
  line(b: Buffer): void;
  /** A line that is refused whole; nothing of it is delivered. */
  error(kind: LineErrorKind, text: string): void;
}

const EMPTY = Buffer.alloc(0);

export class Pop3Reader {
  private buf: Buffer = EMPTY;
  /** Dropping the rest of a line already refused as too long. */
  private skipping = false;
  private paused = false;

  constructor(
    /** Longest line, CRLF included (RFC 2449: 255 for commands). The session raises it for an AUTH exchange. */
    public maxLine: number,
    private readonly sink: LineSink,
  ) {}

  /** Octets held, not yet delivered. */
  get buffered(): number {
    return this.buf.length;
  }

  feed(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.drain();
  }

  /** Holds lines from here (a login in progress, STLS) until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.drain();
  }

  /** Drops everything held (what came after STLS in the clear) and returns how many octets that was. */
  discardBuffered(): number {
    const n = this.buf.length;
    this.buf = EMPTY;
    this.skipping = false;
    return n;
  }

  private drain(): void {
    while (!this.paused && this.buf.length) {
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
      // Content may be maxLine - 2 octets (room for CRLF); with a CR still possible, maxLine held octets are too many.
      if (lf < 0) {
        if (this.buf.length >= this.maxLine) {
          this.buf = EMPTY;
          this.skipping = true;
          this.sink.error('line_too_long', 'Command line too long.');
        }
        return;
      }
      let line = this.buf.subarray(0, lf);
      this.buf = this.buf.subarray(lf + 1);
      if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      if (line.length > this.maxLine - 2) this.sink.error('line_too_long', 'Command line too long.');
      else if (line.includes(0x0d)) this.sink.error('bare_cr', 'CR sent without LF.');
      else if (line.includes(0)) this.sink.error('nul', 'NUL in command.');
      else this.sink.line(line);
    }
  }
}

export interface Pop3Command {
  /** The keyword, upper-cased; '' for an empty line. */
  name: string;
  /** The arguments split at spaces (trailing spaces ignored). */
  args: string[];
  /** Everything after the first space, as sent: PASS takes it whole, spaces included (RFC 1939 §7, PO-03). */
  rest: Buffer;
}

export function parseCommand(line: Buffer): Pop3Command {
  const sp = line.indexOf(0x20);
  const name = line.toString('latin1', 0, sp < 0 ? line.length : sp).toUpperCase();
  const rest = sp < 0 ? EMPTY : line.subarray(sp + 1);
  const text = rest.toString('latin1').replace(/ +$/, '');
  return { name, args: text ? text.split(' ') : [], rest };
}
