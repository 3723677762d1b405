// PDF actions that run code: JavaScript, JavaScript run on open, launch actions, embedded files. A bounded scan of
// the raw bytes and of the object streams (PDF 1.5 compresses dictionaries there, and droppers hide their actions in
// them); names written with #xx escapes (/J#61vaScript) are decoded first.
import zlib from 'node:zlib';

export interface PdfFacts {
  javascript: boolean;
  /** /OpenAction or /AA (additional actions) in a file with JavaScript: code that runs when the file opens. */
  autoJavascript: boolean;
  launch: boolean;
  embeddedFile: boolean;
}

const ESCAPED_NAME = /\/[A-Za-z]*#[0-9A-Fa-f]{2}[A-Za-z0-9#]*/g;

/** Whether `name` (without its slash) occurs as a PDF name: followed by a delimiter, not by more name characters. */
function hasName(s: string, name: string): boolean {
  const needle = `/${name}`;
  for (let at = s.indexOf(needle); at >= 0; at = s.indexOf(needle, at + 1)) {
    const next = s.charCodeAt(at + needle.length);
    if (Number.isNaN(next) || !/[A-Za-z0-9]/.test(String.fromCharCode(next))) return true;
  }
  return false;
}

/** Most bytes inflated from the object streams of one PDF, and most object streams opened. */
const MAX_INFLATED = 4 * 1024 * 1024;
const MAX_OBJECT_STREAMS = 256;

/** The inflated content of the FlateDecode object streams, within MAX_INFLATED. */
function objectStreams(raw: Buffer, s: string): string {
  const out: string[] = [];
  let left = MAX_INFLATED;
  let opened = 0;
  for (let at = s.indexOf('/ObjStm'); at >= 0 && opened < MAX_OBJECT_STREAMS && left > 0; at = s.indexOf('/ObjStm', at + 7)) {
    const dictEnd = s.indexOf('>>', at);
    const kw = s.indexOf('stream', at);
    if (kw < 0 || dictEnd < 0 || kw < dictEnd) continue;
    let start = kw + 6;
    if (s[start] === '\r') start++;
    if (s[start] === '\n') start++;
    const end = s.indexOf('endstream', start);
    if (end < 0) break;
    opened++;
    if (!s.slice(at, kw).includes('/FlateDecode')) continue;
    try {
      const text = zlib.inflateSync(raw.subarray(start, end), { maxOutputLength: left, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      left -= text.length;
      out.push(text.toString('latin1'));
    } catch {
      // A stream that does not inflate, or would inflate past the budget, adds nothing.
    }
    at = end;
  }
  return out.join('\n');
}

export function inspectPdf(buf: Uint8Array, maxBytes: number): PdfFacts {
  const raw = Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.length, maxBytes));
  let s = raw.toString('latin1');
  if (s.includes('/ObjStm')) s += `\n${objectStreams(raw, s)}`;
  if (s.includes('#')) {
    const decoded: string[] = [];
    for (const m of s.matchAll(ESCAPED_NAME)) {
      decoded.push(m[0].replace(/#([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))));
      if (decoded.length > 10_000) break;
    }
    if (decoded.length) s += `\n${decoded.join(' ')} `;
  }
  const javascript = hasName(s, 'JavaScript') || hasName(s, 'JS');
  return {
    javascript,
    autoJavascript: javascript && (hasName(s, 'OpenAction') || hasName(s, 'AA')),
    launch: hasName(s, 'Launch'),
    embeddedFile: hasName(s, 'EmbeddedFile') || hasName(s, 'EmbeddedFiles'),
  };
}
