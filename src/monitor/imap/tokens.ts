// The IMAP command grammar the parser (parser.ts) applies to one line segment: tags, command names, atoms, quoted
// strings, lists and the literal marker that may end a segment (RFC 9051 §9).

export type ImapArg =
  | { type: 'atom'; value: string }
  | { type: 'quoted'; value: Buffer }
  /** In streaming mode `value` is empty: the bytes went through `literal()`. */
  | { type: 'literal'; value: Buffer; size: number; sync: boolean; binary: boolean }
  | { type: 'list'; items: ImapArg[] };

export interface ImapCommand {
  tag: string;
  /** Upper case; `UID FETCH` and the like keep their sub-command. */
  name: string;
  args: ImapArg[];
  /** Octets of the command's lines (and, when collected, its literals). */
  bytes: number;
}

export type ParseErrorKind =
  | 'bare_cr'
  | 'bad_tag'
  | 'syntax'
  | 'nul'
  | 'line_too_long'
  | 'literal_too_big'
  | 'nonsync_too_big'
  | 'too_deep'
  | 'refused';

export interface ParseError {
  kind: ParseErrorKind;
  /** The command's tag when it was readable; null for `* BAD`. */
  tag: string | null;
  /** Response code without brackets, e.g. TOOBIG. */
  code?: string;
  text: string;
  /** The stream cannot be framed any more (a literal too large to skip): say BYE and close. */
  fatal: boolean;
}

/** Where tokenize() puts what it reads: the command's arguments and the lists still open. */
export interface ArgState {
  tag: string;
  args: ImapArg[];
  stack: ImapArg[][];
}

const SP = 0x20;
/** How far from the end of a line a literal marker is looked for (a longer digit string is no size anyway). */
const MARKER_SCAN = 64;

// RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials: ( ) { SP CTL % * " \ ]. A tag is an ASTRING-CHAR
// (atom chars plus ]) except +.
const TAG_CHAR = new Uint8Array(256);
// Bytes that may appear in an argument atom. Lenient where the server is the judge (%, *, \ for flags and LIST
// patterns, [ ] < > for FETCH sections, 8-bit for UTF-8 names); strict on controls and on what frames a command.
const ATOM_CHAR = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) {
  if (!'(){%*"\\+'.includes(String.fromCharCode(c))) TAG_CHAR[c] = 1;
  if (!'(){"'.includes(String.fromCharCode(c))) ATOM_CHAR[c] = 1;
}
for (let c = 0x80; c < 0x100; c++) ATOM_CHAR[c] = 1;

const LITERAL_MARKER = /(~?)\{(\d+)(\+?)\}$/;

export interface Marker {
  size: number;
  sync: boolean;
  binary: boolean;
  /** Where the marker starts in the segment. */
  at: number;
}

/** Reads a literal marker at the end of a segment; size is Infinity for digit strings no buffer could hold. */
export function markerAtEnd(seg: Buffer): Marker | undefined {
  if (seg.length < 3 || seg[seg.length - 1] !== 0x7d) return undefined;
  const tail = seg.subarray(Math.max(0, seg.length - MARKER_SCAN)).toString('latin1');
  const m = LITERAL_MARKER.exec(tail);
  if (!m) return undefined;
  // More than 15 digits cannot be a real size (IM-04): never turn them into a number that could be allocated.
  const size = m[2].length > 15 ? Infinity : Number(m[2]);
  return { size, sync: m[3] === '', binary: m[1] === '~', at: seg.length - m[0].length };
}

/** The tag of a line when it has a valid one, for the BAD that answers a broken command. */
export function readTag(line: Buffer): string | null {
  let i = 0;
  while (i < line.length && TAG_CHAR[line[i]]) i++;
  return i > 0 && (i === line.length || line[i] === SP) ? line.toString('latin1', 0, i) : null;
}

export function readHead(line: Buffer): { tag: string; name: string; end: number } | { error: ParseError } {
  const tag = readTag(line);
  if (tag === null) return { error: { kind: 'bad_tag', tag: null, text: 'Invalid tag', fatal: false } };
  let i = tag.length + 1;
  let j = i;
  while (j < line.length && isNameChar(line[j])) j++;
  if (j === i || (j < line.length && line[j] !== SP)) {
    return { error: { kind: 'syntax', tag, text: j === i && j >= line.length ? 'Missing command' : 'Invalid command name', fatal: false } };
  }
  let name = line.toString('latin1', i, j).toUpperCase();
  if (name === 'UID' && j < line.length) {
    i = j + 1;
    j = i;
    while (j < line.length && isNameChar(line[j])) j++;
    if (j === i || (j < line.length && line[j] !== SP)) return { error: { kind: 'syntax', tag, text: 'Invalid UID command', fatal: false } };
    name += ' ' + line.toString('latin1', i, j).toUpperCase();
  }
  return { tag, name, end: j };
}

function isNameChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2e;
}

/** Reads the arguments of line[i, stop) into cmd; returns an error for what the grammar does not allow. */
export function tokenize(line: Buffer, i: number, stop: number, cmd: ArgState, maxDepth: number): ParseError | undefined {
  const bad = (text: string, kind: ParseErrorKind = 'syntax'): ParseError => ({ kind, tag: cmd.tag, text, fatal: false });
  while (i < stop) {
    const c = line[i];
    const into = cmd.stack.at(-1) ?? cmd.args;
    if (c === SP) {
      i++;
    } else if (c === 0x28) {
      if (cmd.stack.length >= maxDepth) return bad('Too deeply nested lists', 'too_deep');
      const items: ImapArg[] = [];
      into.push({ type: 'list', items });
      cmd.stack.push(items);
      i++;
    } else if (c === 0x29) {
      if (!cmd.stack.length) return bad('Unexpected )');
      cmd.stack.pop();
      i++;
    } else if (c === 0x22) {
      const out: number[] = [];
      let j = i + 1;
      for (;;) {
        if (j >= stop) return bad('Missing " at the end of a quoted string');
        const q = line[j];
        if (q === 0x22) break;
        if (q === 0) return bad('NUL in quoted string', 'nul');
        if (q === 0x5c) {
          const e = line[j + 1];
          if (j + 1 >= stop || (e !== 0x22 && e !== 0x5c)) return bad('Invalid escape in quoted string');
          out.push(e);
          j += 2;
          continue;
        }
        out.push(q);
        j++;
      }
      into.push({ type: 'quoted', value: Buffer.from(out) });
      i = j + 1;
    } else if (ATOM_CHAR[c]) {
      let j = i + 1;
      while (j < stop && ATOM_CHAR[line[j]]) j++;
      into.push({ type: 'atom', value: line.toString('latin1', i, j) });
      i = j;
    } else if (c === 0x7b || c === 0x7e) {
      return bad('Literal marker not at the end of a line');
    } else {
      return bad(c === 0 ? 'NUL in command' : 'Invalid character in command', c === 0 ? 'nul' : 'syntax');
    }
  }
  return undefined;
}
