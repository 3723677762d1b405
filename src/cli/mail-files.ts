// Messages from paths on disk: single files, folders (recursively) and mbox files (split on "From " lines).
import fs from 'node:fs';
import path from 'node:path';

/** Largest file read; a bigger one is reported and skipped rather than loaded whole. */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

export interface MailSource {
  /** Where the message came from: the file, and for an mbox its 1-based position in it. */
  where: string;
  raw: Buffer;
}

/** Every regular file under the given paths, sorted, so runs are repeatable. */
export function listFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) {
        if (name.startsWith('.')) continue;
        walk(path.join(p, name));
      }
    } else if (st.isFile()) out.push(p);
  };
  for (const p of paths) walk(p);
  return out;
}

const FROM_LINE = /^From \S*.*$/;
// A message starts with a header field (RFC 5322 field names in practice: letters, digits, hyphens). Anything
// else in a folder (an index, a JSON sidecar, a checksum list) is not a message and is skipped.
const HEADER_LINE = /^[A-Za-z0-9][A-Za-z0-9-]{0,75}:/;

/**
 * The messages of one file. A file whose first line is an mbox "From " line is split at every line that starts
 * with "From " (mboxo/mboxrd; ">From " quoting is undone one level), and the separator lines are dropped. A file
 * that starts with neither is not a message: `onSkip` is told and nothing is yielded.
 */
export function* messagesOfFile(file: string, onSkip: (file: string) => void = () => undefined): Generator<MailSource> {
  const st = fs.statSync(file);
  if (st.size > MAX_FILE_BYTES) throw new Error(`${file}: larger than ${MAX_FILE_BYTES} bytes`);
  const buf = fs.readFileSync(file);
  const firstEnd = buf.indexOf(10);
  const first = buf.subarray(0, firstEnd < 0 ? buf.length : firstEnd).toString('latin1');
  if (!FROM_LINE.test(first)) {
    if (HEADER_LINE.test(first)) yield { where: file, raw: buf };
    else onSkip(file);
    return;
  }
  let start = firstEnd < 0 ? buf.length : firstEnd + 1;
  let n = 0;
  for (;;) {
    const sep = buf.indexOf('\nFrom ', start);
    const end = sep < 0 ? buf.length : sep + 1;
    const body = buf.subarray(start, end);
    n++;
    if (body.length > 0) yield { where: n === 1 && sep < 0 ? file : `${file}#${n}`, raw: unquoteFrom(body) };
    if (sep < 0) return;
    const lineEnd = buf.indexOf(10, sep + 1);
    if (lineEnd < 0) return;
    start = lineEnd + 1;
  }
}

function unquoteFrom(b: Buffer): Buffer {
  if (b.indexOf('\n>From ') < 0 && !b.subarray(0, 6).equals(Buffer.from('>From '))) return b;
  return Buffer.from(b.toString('latin1').replace(/^>(>*From )/gm, '$1'), 'latin1');
}

/** Every message under the given paths, file by file. */
export function* messagesOf(paths: readonly string[], onSkip?: (file: string) => void): Generator<MailSource> {
  for (const f of listFiles(paths)) yield* messagesOfFile(f, onSkip);
}
