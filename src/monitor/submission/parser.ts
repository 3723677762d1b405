// The submission command reader: frames the client's bytes into command lines (CRLF, or a bare LF), refuses a
// bare CR, a NUL and an overlong line without buffering it, and, after the server's 354, hands the message
// through a DataScanner (data.ts) until its final dot, then reads commands again from the byte after it (RFC 5321
// §4.1.1.4, RFC 2920: a client may pipeline commands behind the message).
// The line framing is shared with POP3 (../line-reader.ts).
import { LineReader, type LineErrorTexts, type LineSink, type RawTaken } from '../line-reader.ts';
import { DataScanner } from './data.ts';

export type { LineErrorKind } from '../line-reader.ts';

export interface SmtpSink extends LineSink {
  /** Message bytes, normalised (data.ts), to pass on as they are. */
  data(b: Buffer): void;
  /** The message ended with its final dot (already passed to data()). */
  dataEnd(scan: DataScanner): void;
}

/** The texts carry their reply codes: the session sends them as they are. */
const SMTP_LINE_ERRORS: LineErrorTexts = {
  line_too_long: '500 5.5.6 Command line too long',
  bare_cr: '501 5.5.2 Bare CR in command line',
  nul: '501 5.5.2 NUL in command line',
};

export class SmtpReader extends LineReader {
  /** Set while a message is being read. */
  private scan: DataScanner | null = null;

  /** maxLine: longest command line, CRLF included; the message is not bound by it. */
  constructor(
    maxLine: number,
    private readonly smtp: SmtpSink,
  ) {
    super(maxLine, smtp, SMTP_LINE_ERRORS);
  }

  /** What comes next is a message (the server answered DATA with 354). */
  startData(): void {
    this.scan = new DataScanner();
  }

  get inData(): boolean {
    return this.scan !== null;
  }

  protected override takeRaw(buf: Buffer): RawTaken | null {
    const scan = this.scan;
    if (!scan) return null;
    const { out, used, done } = scan.push(buf);
    if (out.length) this.smtp.data(out);
    if (done) {
      this.scan = null;
      this.smtp.dataEnd(scan);
    }
    return { used, done };
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
