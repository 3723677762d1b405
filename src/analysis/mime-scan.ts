// The structure scan: one pass over a message's raw bytes, no decoding, that keeps hostile MIME structure (nesting,
// part floods, parameter floods, header blocks of megabytes) away from the MIME parser (reliability 2.4).

/**
 * Caps on the work one message may cause. A message over any of them is not handed to the MIME parser at all: it is
 * reported as over the limit (the mime check turns that into MIME_UNSCANNABLE, so it is held, never passed as clean).
 */
export interface ParseLimits {
  /** Nesting of multipart and inline message/rfc822 entities (Postfix mime_nesting_limit 100, Thunderbird 50). */
  maxDepth: number;
  /** MIME entities in the whole message, nested messages included (Haraka 1,000, Dovecot 10,000). */
  maxParts: number;
  /** Octets of one header block (Postfix header_size_limit 100 KiB). */
  maxHeaderBytes: number;
  /** Octets of all header blocks together (postal-mime's own cap is 2 MiB per nesting level). */
  maxTotalHeaderBytes: number;
  /** Parameters of one Content-Type or Content-Disposition, RFC 2231 sections counted one by one (CVE-2026-27859). */
  maxParams: number;
  /**
   * Octets of one boundary (RFC 2046 allows 70, Postfix mime_boundary_length_limit 2048): postal-mime compares every
   * line that starts with "--" against each open boundary, so their length times the nesting is work per octet.
   */
  maxBoundaryBytes: number;
  /** Decoded octets of all parts together, a nested message counted once more for each level it is parsed at. */
  maxDecodedBytes: number;
}

export const PARSE_LIMITS: Readonly<ParseLimits> = Object.freeze({
  maxDepth: 32,
  maxParts: 1_000,
  maxHeaderBytes: 256 * 1024,
  maxTotalHeaderBytes: 1024 * 1024,
  maxParams: 64,
  maxBoundaryBytes: 2_048,
  maxDecodedBytes: 64 * 1024 * 1024,
});

/** The configured bounds ([analysis.parse]) as the scan takes them. */
export function parseLimitsOf(c: {
  max_depth: number;
  max_parts: number;
  max_header_bytes: number;
  max_total_header_bytes: number;
  max_params: number;
  max_boundary_bytes: number;
  max_decoded_bytes: number;
}): Readonly<ParseLimits> {
  return Object.freeze({
    maxDepth: c.max_depth,
    maxParts: c.max_parts,
    maxHeaderBytes: c.max_header_bytes,
    maxTotalHeaderBytes: c.max_total_header_bytes,
    maxParams: c.max_params,
    maxBoundaryBytes: c.max_boundary_bytes,
    maxDecodedBytes: c.max_decoded_bytes,
  });
}

/** Which cap a message exceeded; 'parser' when the MIME parser itself failed. */
export type LimitHit = 'depth' | 'parts' | 'header-size' | 'params' | 'decoded-size' | 'parser';

/** What the structure scan saw, whether or not the full parse ran. */
export interface MimeStructure {
  /** MIME entities, the message itself included. */
  parts: number;
  depth: number;
  decodedBytes: number;
  /** Inline text/plain and text/html leaf parts. */
  textParts: number;
  htmlParts: number;
  /** Leaf parts that are neither inline text nor a multipart. */
  otherParts: number;
  /** Multiparts without a boundary parameter, or whose closing delimiter never came. */
  unclosed: number;
  /** Content-Transfer-Encoding values that are unknown, or encode a multipart or message/rfc822 (RFC 2045 6.4). */
  badCte: string[];
  /** charset parameters of text parts that no decoder knows. */
  badCharset: string[];
  /** Top-level Content-Type, lower case, '' when absent. */
  topType: string;
}

const isWsp = (c: string | undefined): boolean => c === ' ' || c === '\t';

/** Trims only SP and HTAB, as postal-mime does: a field name led by U+00A0 must stay distinct from a real one. */
export function trimWsp(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWsp(s[a])) a++;
  while (b > a && isWsp(s[b - 1])) b--;
  return s.slice(a, b);
}

/** Without trailing SP/HTAB; a loop, since /[ \t]+$/ backtracks quadratically over inner runs of blanks. */
function trimEnd(s: string): string {
  let e = s.length;
  while (e > 0 && isWsp(s[e - 1])) e--;
  return e === s.length ? s : s.slice(0, e);
}

const KNOWN_CTE = new Set(['7bit', '8bit', 'binary', 'quoted-printable', 'base64']);
const charsetKnown = new Map<string, boolean>();

/** Whether a TextDecoder exists for the label; memoised, bounded, since labels repeat across messages. */
function knownCharset(label: string): boolean {
  let ok = charsetKnown.get(label);
  if (ok === undefined) {
    try {
      new TextDecoder(label);
      ok = true;
    } catch {
      ok = false;
    }
    if (charsetKnown.size < 512) charsetKnown.set(label, ok);
  }
  return ok;
}

/** Value and parameters of a structured header, split at `;` outside quoted strings; stops counting at `max + 1`. */
function structured(value: string, max: number): { type: string; params: Map<string, string>; count: number } {
  const pieces: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && quoted) {
      cur += c + (value[i + 1] ?? '');
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === ';' && !quoted) {
      pieces.push(cur);
      cur = '';
      if (pieces.length > max + 1) break;
    } else cur += c;
  }
  pieces.push(cur);
  const params = new Map<string, string>();
  let count = 0;
  for (const p of pieces.slice(1)) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    count++;
    const name = p.slice(0, eq).trim().toLowerCase();
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"')) v = v.slice(1, v.endsWith('"') && v.length > 1 ? -1 : undefined).replace(/\\(.)/g, '$1');
    if (!params.has(name)) params.set(name, v);
  }
  return { type: pieces[0].replace(/\([^()]*\)/g, '').trim().toLowerCase(), params, count };
}

interface Entity {
  depth: number;
  headerBytes: number;
  /** First Content-Type, Content-Transfer-Encoding and Content-Disposition, as postal-mime takes them. */
  fields: Map<string, string>;
  last: string | undefined;
  parentDigest: boolean;
}

interface Frame {
  boundary: string;
  depth: number;
  digest: boolean;
}

/**
 * Walks the MIME tree the way postal-mime will (first Content-* header wins, delimiters matched innermost first,
 * inline message/rfc822 parsed as a nested message) and counts what the caps bound. Linear in the size of the
 * message: a delimiter line is one Map lookup, whatever the nesting.
 */
export function scanStructure(raw: Buffer, limits: Readonly<ParseLimits> = PARSE_LIMITS): { structure: MimeStructure; limits: LimitHit[] } {
  const s: MimeStructure = { parts: 0, depth: 0, decodedBytes: 0, textParts: 0, htmlParts: 0, otherParts: 0, unclosed: 0, badCte: [], badCharset: [], topType: '' };
  const hits = new Set<LimitHit>();
  let totalHeader = 0;
  const frames: Frame[] = [];
  const byBoundary = new Map<string, number[]>();
  let longest = 0;
  let entity: Entity | undefined;
  // The leaf whose body is being read: its start offset and how to estimate its decoded size.
  let leaf: { start: number; base64: boolean; nested?: number } | undefined;
  // Inline nested messages still open: postal-mime keeps each one's bytes, so they count as decoded once more.
  const wrappers: { start: number; frames: number }[] = [];
  const closeWrappers = (keep: number, end: number): void => {
    while (wrappers.length && wrappers[wrappers.length - 1].frames > keep) {
      s.decodedBytes += Math.max(0, end - (wrappers.pop() as { start: number }).start);
    }
    if (s.decodedBytes > limits.maxDecodedBytes) hits.add('decoded-size');
  };

  const newEntity = (depth: number, parentDigest: boolean): void => {
    s.parts++;
    if (depth > s.depth) s.depth = depth;
    if (s.parts > limits.maxParts) hits.add('parts');
    if (depth > limits.maxDepth) hits.add('depth');
    entity = { depth, headerBytes: 0, fields: new Map(), last: undefined, parentDigest };
  };
  const endLeaf = (end: number): void => {
    if (!leaf) return;
    const n = Math.max(0, end - leaf.start);
    s.decodedBytes += leaf.base64 ? Math.floor((n * 3) / 4) : n;
    if (leaf.nested !== undefined) {
      // A base64 or quoted-printable message/rfc822 is decoded and parsed again by postal-mime: scan it too.
      const inner = leaf.base64 ? Buffer.from(raw.subarray(leaf.start, end).toString('latin1'), 'base64') : raw.subarray(leaf.start, end);
      const sub = scanStructure(inner, { ...limits, maxDepth: limits.maxDepth - leaf.nested, maxParts: limits.maxParts - s.parts, maxDecodedBytes: limits.maxDecodedBytes - s.decodedBytes, maxTotalHeaderBytes: limits.maxTotalHeaderBytes - totalHeader });
      for (const h of sub.limits) hits.add(h);
      s.parts += sub.structure.parts;
      s.depth = Math.max(s.depth, leaf.nested + sub.structure.depth);
      s.decodedBytes += sub.structure.decodedBytes;
      s.textParts += sub.structure.textParts;
      s.htmlParts += sub.structure.htmlParts;
      s.otherParts += sub.structure.otherParts;
      s.unclosed += sub.structure.unclosed;
      s.badCte.push(...sub.structure.badCte.slice(0, 4));
      s.badCharset.push(...sub.structure.badCharset.slice(0, 4));
    }
    if (s.decodedBytes > limits.maxDecodedBytes) hits.add('decoded-size');
    leaf = undefined;
  };
  const popTo = (n: number): void => {
    while (frames.length > n) {
      const f = frames.pop() as Frame;
      const key = trimEnd(f.boundary);
      const list = byBoundary.get(key) as number[];
      list.pop();
      if (!list.length) byBoundary.delete(key);
    }
  };
  /** The header block of the current entity ended at `bodyStart`: decide what its body is. */
  const endHeader = (bodyStart: number): void => {
    const e = entity as Entity;
    entity = undefined;
    const ct = structured(e.fields.get('content-type') ?? '', limits.maxParams);
    const cd = structured(e.fields.get('content-disposition') ?? '', limits.maxParams);
    if (ct.count > limits.maxParams || cd.count > limits.maxParams) hits.add('params');
    const type = ct.type || (e.parentDigest ? 'message/rfc822' : 'text/plain');
    if (e.depth === 0) s.topType = ct.type;
    const cteRaw = (e.fields.get('content-transfer-encoding') ?? '').replace(/\([^()]*\)/g, '').trim().toLowerCase();
    const cte = /^[\w-]*/.exec(cteRaw)?.[0] ?? '';
    const structural = type.startsWith('multipart/') || type === 'message/rfc822';
    if (cte && (!KNOWN_CTE.has(cte) || (structural && (cte === 'base64' || cte === 'quoted-printable')))) {
      if (s.badCte.length < 8) s.badCte.push(`${type}: ${cteRaw.slice(0, 40)}`);
    }
    const attachment = cd.type === 'attachment';
    if (type.startsWith('multipart/')) {
      const boundary = ct.params.get('boundary');
      if (!boundary) {
        s.unclosed++;
        s.otherParts++;
        leaf = { start: bodyStart, base64: false };
        return;
      }
      if (boundary.length > limits.maxBoundaryBytes) hits.add('params');
      frames.push({ boundary, depth: e.depth, digest: type === 'multipart/digest' });
      const key = trimEnd(boundary);
      const list = byBoundary.get(key);
      if (list) list.push(frames.length - 1);
      else byBoundary.set(key, [frames.length - 1]);
      if (boundary.length > longest) longest = boundary.length;
      return;
    }
    if (type === 'message/rfc822' && !attachment) {
      if (cte === 'base64' || cte === 'quoted-printable') {
        leaf = { start: bodyStart, base64: cte === 'base64', nested: e.depth + 1 };
        return;
      }
      wrappers.push({ start: bodyStart, frames: frames.length });
      newEntity(e.depth + 1, false);
      return;
    }
    if ((type === 'text/plain' || type === 'text/html') && !attachment) {
      if (type === 'text/plain') s.textParts++;
      else s.htmlParts++;
    } else s.otherParts++;
    const charset = ct.params.get('charset');
    if (type.startsWith('text/') && charset && !knownCharset(charset.trim().toLowerCase()) && s.badCharset.length < 8) s.badCharset.push(charset.slice(0, 40));
    leaf = { start: bodyStart, base64: cte === 'base64' };
  };

  newEntity(0, false);
  let pos = 0;
  const len = raw.length;
  while (pos < len && !hits.size) {
    let nl = raw.indexOf(10, pos);
    if (nl < 0) nl = len;
    let end = nl;
    if (end > pos && raw[end - 1] === 13) end--;
    const next = nl + 1;
    // A delimiter line: "--" boundary ["--"] and only SP/HTAB after it (RFC 2046 5.1.1), innermost match first. As
    // in postal-mime it counts even inside a header block, so that headerless parts ("--p" CRLF "--p" …) are counted.
    let delimiter = false;
    if (frames.length && end - pos >= 3 && raw[pos] === 45 && raw[pos + 1] === 45) {
      let e2 = end;
      while (e2 > pos && (raw[e2 - 1] === 32 || raw[e2 - 1] === 9)) e2--;
      if (e2 - pos <= longest + 4) {
        const cand = raw.toString('latin1', pos + 2, e2);
        // "--a--" is a delimiter of boundary "a--" or the close of "a": whichever multipart is innermost wins.
        // Keys are boundaries without trailing blanks (RFC 2046 forbids them, postal-mime still matches them
        // byte for byte), so each candidate is checked against the exact boundary of its frame.
        const innermost = (key: string, close: boolean): number => {
          const list = byBoundary.get(trimEnd(key));
          if (!list) return -1;
          for (let j = list.length - 1; j >= 0; j--) {
            const b = frames[list[j]].boundary;
            let k = pos + 2 + b.length;
            if (k > end || raw.toString('latin1', pos + 2, k) !== b) continue;
            if (close) {
              if (raw[k] !== 45 || raw[k + 1] !== 45) continue;
              k += 2;
            }
            if (k >= e2 && k <= end) return list[j];
          }
          return -1;
        };
        const asOpen = innermost(cand, false);
        const asClose = cand.endsWith('--') ? innermost(cand.slice(0, -2), true) : -1;
        const open = asOpen > asClose;
        const i = Math.max(asOpen, asClose);
        if (i >= 0) {
          delimiter = true;
          if (entity) endHeader(pos);
          entity = undefined;
          endLeaf(pos);
          s.unclosed += frames.length - 1 - i;
          closeWrappers(i, pos);
          if (open) {
            popTo(i + 1);
            newEntity(frames[i].depth + 1, frames[i].digest);
          } else popTo(i);
        }
      }
    }
    if (entity && !delimiter) {
      const n = next - pos;
      entity.headerBytes += n;
      totalHeader += n;
      if (entity.headerBytes > limits.maxHeaderBytes || totalHeader > limits.maxTotalHeaderBytes) {
        hits.add('header-size');
        break;
      }
      if (end === pos) endHeader(Math.min(next, len));
      else if (raw[pos] === 32 || raw[pos] === 9) {
        const last = entity.last;
        if (last !== undefined) entity.fields.set(last, `${entity.fields.get(last)} ${raw.toString('latin1', pos, end).trim()}`);
      } else {
        const at = raw.subarray(pos, Math.min(end, pos + 40)).indexOf(58);
        const colon = pos + at;
        entity.last = undefined;
        if (at > 0) {
          const name = trimWsp(raw.toString('latin1', pos, colon)).toLowerCase();
          if ((name === 'content-type' || name === 'content-transfer-encoding' || name === 'content-disposition') && !entity.fields.has(name)) {
            entity.fields.set(name, raw.toString('latin1', colon + 1, end).trim());
            entity.last = name;
          }
        }
      }
    }
    pos = next;
  }
  if (!hits.size) {
    if (entity) endHeader(len);
    endLeaf(len);
    closeWrappers(-1, len);
    if (s.decodedBytes > limits.maxDecodedBytes) hits.add('decoded-size');
    s.unclosed += frames.length;
  }
  return { structure: s, limits: [...hits] };
}
