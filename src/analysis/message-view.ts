// Parse once: the read-only view of one message that every data-phase check shares.
import PostalMime, { decodeWords, type Email } from 'postal-mime';

export interface HeaderField {
  /** Lower-case name. */
  name: string;
  /** Unfolded raw value (after the colon, trimmed). */
  value: string;
}

export interface MessageView {
  raw: Buffer;
  size: number;
  /** Header fields in order, unfolded. */
  headers: readonly HeaderField[];
  /** Octets of the header block (including the blank line), -1 when the message has no body separator. */
  headerBytes: number;
  header(name: string): string | undefined;
  headerAll(name: string): string[];
  subject?: string;
  messageId?: string;
  bodyBytes: number;
  /**
   * The full MIME parse (postal-mime), made on first use and shared by every check that asks;
   * `error` is set when the parser failed. Header-only checks never pay for it.
   */
  parse(): Promise<{ email?: Email; error?: string }>;
}

/**
 * Splits the header block. postal-mime decodes values; checks of header form (duplicates, raw syntax)
 * need the raw unfolded fields in order, which it does not keep, so this small splitter does that part.
 */
export function splitHeaders(raw: Buffer): { headers: HeaderField[]; headerBytes: number } {
  let end = raw.indexOf('\r\n\r\n');
  let sepLen = 4;
  if (end < 0) {
    end = raw.length;
    sepLen = 0;
  }
  if (raw.subarray(0, 2).toString('latin1') === '\r\n') return { headers: [], headerBytes: 2 };
  // UTF-8 (SMTPUTF8 headers); undecodable octets become U+FFFD, which the header checks can see.
  const block = raw.subarray(0, end).toString('utf8');
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
    headers.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return { headers, headerBytes: sepLen ? end + sepLen : -1 };
}

function decoded(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return decodeWords(v);
  } catch {
    return v;
  }
}

export async function buildMessageView(raw: Buffer): Promise<MessageView> {
  const { headers, headerBytes } = splitHeaders(raw);
  const byName = new Map<string, string[]>();
  for (const h of headers) {
    const list = byName.get(h.name);
    if (list) list.push(h.value);
    else byName.set(h.name, [h.value]);
  }
  let parsing: Promise<{ email?: Email; error?: string }> | undefined;
  return {
    raw,
    size: raw.length,
    headers,
    headerBytes,
    header: (n) => byName.get(n.toLowerCase())?.[0],
    headerAll: (n) => byName.get(n.toLowerCase()) ?? [],
    subject: decoded(byName.get('subject')?.[0]),
    messageId: byName.get('message-id')?.[0],
    bodyBytes: headerBytes < 0 ? 0 : raw.length - headerBytes,
    parse() {
      parsing ??= PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer' }).then(
        (email) => ({ email }),
        (err: Error) => ({ error: err.message }),
      );
      return parsing;
    },
  };
}
