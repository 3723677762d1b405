// Every file name the MIME part headers declare. The parser keeps one name per part (the Content-Disposition
// filename before the Content-Type name), but mail clients differ in which they show and save, so a name hidden in
// the other parameter is judged too ("invoice.pdf" in one, "invoice.pdf.exe" in the other).
import { decodeWords } from 'postal-mime';

const FIELD = /\r\ncontent-(?:type|disposition)[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/gi;
const PARAM = /;\s*((?:file)?name)(\*\d+)?(\*)?\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)/gi;

function pct(value: string, charset: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length && bytes.length < 4096; i++) {
    if (value[i] === '%' && /^[0-9a-f]{2}$/i.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(value.charCodeAt(i) & 0xff);
  }
  try {
    return new TextDecoder(charset || 'utf-8').decode(Uint8Array.from(bytes));
  } catch {
    return Buffer.from(bytes).toString('latin1');
  }
}

/** The names in one header value, RFC 2231 sections joined and decoded, encoded words decoded. */
function namesIn(value: string): string[] {
  const sections = new Map<string, { parts: string[]; charset: string }>();
  for (const m of value.matchAll(PARAM)) {
    const key = m[1].toLowerCase();
    let v = m[4];
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    // Raw 8-bit names are usually UTF-8 (the header was read as latin1 to keep every octet).
    if (/[\x80-\xff]/.test(v)) {
      const u = Buffer.from(v, 'latin1').toString('utf8');
      if (!u.includes('\uFFFD')) v = u;
    }
    const index = m[2] ? Number(m[2].slice(1)) : 0;
    if (index > 64) continue;
    const s = sections.get(key) ?? { parts: [], charset: '' };
    if (m[3]) {
      // Extended value: charset'language'percent-encoded (charset only on the first section).
      if (index === 0) {
        const q = /^([^']*)'[^']*'(.*)$/.exec(v);
        if (q) {
          s.charset = q[1];
          v = q[2];
        }
      }
      v = pct(v, s.charset);
    }
    s.parts[index] = v;
    sections.set(key, s);
  }
  const out: string[] = [];
  for (const s of sections.values()) {
    const joined = s.parts.join('');
    try {
      out.push(decodeWords(joined));
    } catch {
      out.push(joined);
    }
  }
  return out;
}

/** File names of the part headers, at most `max` distinct ones, in order of appearance. */
export function declaredNames(raw: Buffer, max = 64): string[] {
  const text = raw.toString('latin1');
  const seen = new Set<string>();
  for (const m of text.matchAll(FIELD)) {
    if (!/name/i.test(m[1])) continue;
    for (const name of namesIn(m[1].replace(/\r\n[ \t]/g, ' '))) {
      if (name) seen.add(name);
      if (seen.size >= max) return [...seen];
    }
  }
  return [...seen];
}
