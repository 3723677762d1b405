// The submission command reader: frames the client's bytes into command lines (CRLF, or a bare LF), refuses a
// bare CR, a NUL and an overlong line without buffering it, and, after the server's 354, hands the message
// through a DataScanner (data.ts) until its final dot, then reads commands again from the byte after it (RFC 5321
// §4.1.1.4, RFC 2920: a client may pipeline commands behind the message).
import { DataScanner } from './data.ts';

export type LineErrorKind = 'line_too_long' | 'bare_cr' | 'nul';

export interface SmtpSink {
  /** A complete command line without its CRLF. */
  line(b: Buffer): void;
  /** A line that is refused whole; nothing of it is delivered. */
  error(kind: LineErrorKind, text: string): void;
  /** Message bytes, normalised (data.ts), to pass on as they are. */
  data(b: Buffer): void;
  /** The message ended with its final dot (already passed to data()). */
  dataEnd(scan: DataScanner): void;
}

const EMPTY = Buffer.alloc(0);

export class SmtpReader {
  private buf: Buffer = EMPTY;
  /** Dropping the rest of a line already refused as too long. */
  private skipping = false;
  private paused = false;
  /** Set while a message is being read. */
  private scan: DataScanner | null = null;

  constructor(
    /** Longest command line, CRLF included. */
    public maxLine: number,
    private readonly sink: SmtpSink,
  ) {}

  get buffered(): number {
    return this.buf.length;
  }

  /** What comes next is a message (the server answered DATA with 354). */
  startData(): void {
    this.scan = new DataScanner();
  }

  get inData(): boolean {
    return this.scan !== null;
  }

  feed(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.drain();
  }

  /** Holds input from here (a login, STARTTLS, DATA waiting for its answer) until resume(). */
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

  private drain(): void {
    while (!this.paused && this.buf.length) {
      if (this.scan) {
        const scan = this.scan;
        const { out, used, done } = scan.push(this.buf);
        this.buf = this.buf.subarray(used);
        if (out.length) this.sink.data(out);
        if (!done) return;
        this.scan = null;
        this.sink.dataEnd(scan);
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
      if (lf < 0) {
        if (this.buf.length >= this.maxLine) {
          this.buf = EMPTY;
          this.skipping = true;
          this.sink.error('line_too_long', '500 5.5.6 Command line too long');
        }
        return;
      }
      let line = this.buf.subarray(0, lf);
      this.buf = this.buf.subarray(lf + 1);
      if (line.length >= this.maxLine) {
        this.sink.error('line_too_long', '500 5.5.6 Command line too long');
        continue;
      }
      if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      // A bare CR could end the line for another reader (SMTP smuggling's cousin); a NUL ends C strings.
      if (line.includes(0x0d)) {
        this.sink.error('bare_cr', '501 5.5.2 Bare CR in command line');
        continue;
      }
      if (line.includes(0)) {
        this.sink.error('nul', '501 5.5.2 NUL in command line');
        continue;
      }
      this.sink.line(line);
    }
  }
}

export interface SmtpCommand {
  /** Upper case: `MAIL`, `RCPT`, `EHLO`… */
  verb: string;
  /** The rest of the line after the verb and one space, as sent. */
  rest: string;
}

export function parseCommand(line: Buffer): SmtpCommand {
  const text = line.toString('latin1');
  const sp = text.indexOf(' ');
  return { verb: (sp < 0 ? text : text.slice(0, sp)).toUpperCase(), rest: sp < 0 ? '' : text.slice(sp + 1) };
}
