// RTF documents with embedded OLE objects: the Equation Editor (CVE-2017-11882) and OLE2Link (CVE-2017-0199)
// classes that exploits use, and Packager objects, whose file is handed back to be judged like any other.

export interface RtfFacts {
  /** Object classes abused by exploits, as written in \objclass or in the OLE1 header. */
  exploitClasses: string[];
  /** Files inside Packager objects. */
  packages: { name: string; data: Buffer }[];
}

const RISKY_CLASS = /^(equation\.3|equation|ole2link|msequation\b|htmlfile)/i;
const MAX_OBJECTS = 16;
const MAX_HEX_CHARS = 16 * 1024 * 1024;

const nibble = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
const isLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** The hex of one \objdata group: control words and braces dropped (exploits sprinkle them in), hex digits kept. */
function objdataBytes(s: string, from: number): Buffer {
  const out = Buffer.allocUnsafe(Math.min(MAX_HEX_CHARS, s.length - from) >> 1);
  let n = 0;
  let high = -1;
  let depth = 1;
  for (let i = from; i < s.length && depth > 0 && n < out.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x7b) depth++;
    else if (c === 0x7d) depth--;
    else if (c === 0x5c) {
      // Skip the control word and its numeric parameter.
      while (i + 1 < s.length && isLetter(s.charCodeAt(i + 1))) i++;
      while (i + 1 < s.length && (s.charCodeAt(i + 1) === 0x2d || nibble(s.charCodeAt(i + 1)) >= 0 && s.charCodeAt(i + 1) <= 57)) i++;
    } else {
      const v = nibble(c);
      if (v < 0) continue;
      if (high < 0) high = v;
      else {
        out[n++] = (high << 4) | v;
        high = -1;
      }
    }
  }
  return out.subarray(0, n);
}

/** OLE1 (MS-OLEDS 2.2): version, format, class name, topic, item, then the native data. */
function ole1(b: Buffer): { className: string; native?: Buffer } | undefined {
  if (b.length < 12) return undefined;
  let at = 8;
  const lenString = (): string | undefined => {
    if (at + 4 > b.length) return undefined;
    const n = b.readUInt32LE(at);
    at += 4;
    if (n > 1024 || at + n > b.length) return undefined;
    const s = b.toString('latin1', at, at + n).replace(/\0+$/, '');
    at += n;
    return s;
  };
  const className = lenString();
  if (className === undefined) return undefined;
  if (lenString() === undefined || lenString() === undefined || at + 4 > b.length) return { className };
  const size = b.readUInt32LE(at);
  return { className, native: b.subarray(at, Math.min(b.length, at + 4 + size)) };
}

export function inspectRtf(bytes: Buffer, maxBytes: number, packageFile: (native: Buffer) => { name: string; data: Buffer } | undefined): RtfFacts {
  const s = bytes.toString('latin1', 0, Math.min(bytes.length, maxBytes));
  const facts: RtfFacts = { exploitClasses: [], packages: [] };
  let objects = 0;
  for (let at = s.indexOf('\\object'); at >= 0 && objects < MAX_OBJECTS; at = s.indexOf('\\object', at + 7)) {
    objects++;
    const cls = /\\objclass\s+([^}\\]{1,64})/.exec(s.slice(at, at + 4096));
    if (cls && RISKY_CLASS.test(cls[1].trim())) facts.exploitClasses.push(cls[1].trim());
    const data = s.indexOf('\\objdata', at);
    if (data < 0 || data - at > 65536) continue;
    const o = ole1(objdataBytes(s, data + 8));
    if (!o) continue;
    if (RISKY_CLASS.test(o.className)) facts.exploitClasses.push(o.className);
    if (/^package$/i.test(o.className) && o.native) {
      const p = packageFile(o.native);
      if (p) facts.packages.push(p);
    }
  }
  return facts;
}
