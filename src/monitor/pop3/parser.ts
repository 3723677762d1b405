// The POP3 command reader: frames the client's bytes into lines the way the server will (CRLF, or a bare LF as
// Dovecot also takes), refuses a bare CR, a NUL and an overlong line without buffering it, and splits each line
// into a command name and arguments (RFC 1939 §3, RFC 2449 §4). Written by hand because no library reads the
// client side of POP3; the line is the whole grammar. The framing is shared with submission (../line-reader.ts).
import { LineReader, type LineErrorTexts, type LineSink } from '../line-reader.ts';

export type { LineErrorKind, LineSink } from '../line-reader.ts';

const EMPTY = Buffer.alloc(0);

/** What follows -ERR for a refused line. */
const POP3_LINE_ERRORS: LineErrorTexts = {
  line_too_long: 'Command line too long.',
  bare_cr: 'CR sent without LF.',
  nul: 'NUL in command.',
};

export class Pop3Reader extends LineReader {
  /** maxLine: longest line, CRLF included (RFC 2449: 255 for commands). The session raises it for an AUTH exchange. */
  constructor(maxLine: number, sink: LineSink) {
    super(maxLine, sink, POP3_LINE_ERRORS);
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
