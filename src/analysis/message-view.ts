// Parse once: the read-only view of one message that every data-phase check shares, and the bounds on that parse.
import PostalMime, { decodeWords, type Email } from 'postal-mime';
import { PARSE_LIMITS, scanStructure, trimWsp, type LimitHit, type MimeStructure, type ParseLimits } from './mime-scan.ts';
import { installChunkJoin } from './mime-join.ts';

installChunkJoin();

export { PARSE_LIMITS, scanStructure, type LimitHit, type MimeStructure, type ParseLimits };

export interface HeaderField {
  /** Lower-case name. */
  name: string;
  /** Unfolded raw value (after the colon, trimmed). */
  value: string;
}

export interface ParseResult {
  email?: Email;
  /** Set when the message was not parsed: a cap was exceeded or the parser failed. */
  error?: string;
  /** Caps exceeded, empty for a message parsed in full. */
  limits: LimitHit[];
  structure: MimeStructure;
}

export interface MessageView {
  raw: Buffer;
  size: number;
  /** Header fields in order, unfolded; only the first maxHeaderBytes of the header block. */
  headers: readonly HeaderField[];
  /** Octets of the header block (including the blank line), -1 when the message has no body separator. */
  headerBytes: number;
  /** The header block was longer than maxHeaderBytes and `headers` holds only its start. */
  headersTruncated: boolean;
  header(name: string): string | undefined;
  headerAll(name: string): string[];
  subject?: string;
  messageId?: string;
  bodyBytes: number;
  /**
   * The full MIME parse (postal-mime), made on first use and shared by every check that asks; `error` is set when the
   * message was not parsed. A structure scan of the raw bytes comes first and keeps hostile structure away from the
   * parser (`limits`). Header-only checks never pay for it.
   */
  parse(): Promise<ParseResult>;
  /**
   * A feature derived from this message (its URLs, say), made by `make` on the first call with `key` and shared by
   * every later caller. It lives and dies with the view. A module-level WeakMap keyed by the view would do the same,
   * but V8's young-generation collections keep WeakMap values alive: each message's derived data, and through it the
   * parse, would be promoted to the old generation and wait there for a full collection.
   */
  derived<T>(key: object, make: () => T): T;
}

/**
 * Splits the header block. postal-mime decodes values; checks of header form (duplicates, raw syntax)
 * need the raw unfolded fields in order, which it does not keep, so this small splitter does that part.
 * Only the first `maxBytes` of the block are split (H-05: a header block of megabytes stays cheap).
 */
export function splitHeaders(raw: Buffer, maxBytes = PARSE_LIMITS.maxHeaderBytes): { headers: HeaderField[]; headerBytes: number; truncated: boolean } {
  let end = raw.indexOf('\r\n\r\n');
  let sepLen = 4;
  if (end < 0) {
    end = raw.length;
    sepLen = 0;
  }
  if (raw.subarray(0, 2).toString('latin1') === '\r\n') return { headers: [], headerBytes: 2, truncated: false };
  const truncated = end > maxBytes;
  // UTF-8 (SMTPUTF8 headers); undecodable octets become U+FFFD, which the header checks can see.
  const block = raw.subarray(0, truncated ? maxBytes : end).toString('utf8');
  const headers: HeaderField[] = [];
  for (const line of block.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && headers.length) {
      const last = headers[headers.length - 1];
      last.value = last.value ? `${last.value} ${line.trim()}` : line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      headers.push({ name: '', value: line });
      continue;
    }
    headers.push({ name: trimWsp(line.slice(0, colon)).toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return { headers, headerBytes: sepLen ? end + sepLen : -1, truncated };
}

function decoded(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return decodeWords(v);
  } catch {
    return v;
  }
}

export async function buildMessageView(raw: Buffer, limits: Readonly<ParseLimits> = PARSE_LIMITS): Promise<MessageView> {
  const { headers, headerBytes, truncated } = splitHeaders(raw, limits.maxHeaderBytes);
  // A Map, not an object: a header named __proto__ must not reach a prototype (H-09).
  const byName = new Map<string, string[]>();
  for (const h of headers) {
    const list = byName.get(h.name);
    if (list) list.push(h.value);
    else byName.set(h.name, [h.value]);
  }
  let parsing: Promise<ParseResult> | undefined;
  const derived = new Map<object, unknown>();
  return {
    raw,
    size: raw.length,
    headers,
    headerBytes,
    headersTruncated: truncated,
    header: (n) => byName.get(n.toLowerCase())?.[0],
    headerAll: (n) => byName.get(n.toLowerCase()) ?? [],
    subject: decoded(byName.get('subject')?.[0]),
    messageId: byName.get('message-id')?.[0],
    bodyBytes: headerBytes < 0 ? 0 : raw.length - headerBytes,
    parse() {
      parsing ??= boundedParse(raw, limits);
      return parsing;
    },
    derived<T>(key: object, make: () => T): T {
      if (!derived.has(key)) derived.set(key, make());
      return derived.get(key) as T;
    },
  };
}

async function boundedParse(raw: Buffer, limits: Readonly<ParseLimits>): Promise<ParseResult> {
  let scanned: ReturnType<typeof scanStructure>;
  try {
    scanned = scanStructure(raw, limits);
  } catch (err) {
    // Never a rejected parse: every check awaits it, and what could not be scanned is held as unscannable.
    const structure: MimeStructure = { parts: 0, depth: 0, decodedBytes: 0, textParts: 0, htmlParts: 0, otherParts: 0, unclosed: 0, badCte: [], badCharset: [], topType: '' };
    return { error: `structure scan failed: ${(err as Error).message}`, limits: ['parser'], structure };
  }
  const { structure, limits: hits } = scanned;
  if (hits.length) return { error: `message exceeds parse limits: ${hits.join(', ')}`, limits: hits, structure };
  try {
    // A Buffer that is its whole ArrayBuffer goes in as that ArrayBuffer, which postal-mime reads without copying
    // (it only reads its input; a view is copied out first).
    const input = raw.buffer instanceof ArrayBuffer && raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw.buffer : raw;
    const email = await PostalMime.parse(input, {
      attachmentEncoding: 'arraybuffer',
      // postal-mime's own caps stay as a second line behind the scan; each is at least as wide as ours.
      maxNestingDepth: limits.maxDepth,
      maxHeadersSize: limits.maxTotalHeaderBytes,
      maxRfc822NestingDepth: limits.maxDepth,
    });
    // A nested message left unparsed hides its attachments from every check (reliability M-02).
    if (email.attachments.some((a) => a.rfc822DepthExceeded)) {
      return { email, error: 'nested message beyond the parse depth', limits: ['depth'], structure };
    }
    return { email, limits: [], structure };
  } catch (err) {
    return { error: (err as Error).message, limits: ['parser'], structure };
  }
}

