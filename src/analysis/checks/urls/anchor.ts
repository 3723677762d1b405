// Links whose visible text shows one domain while the href goes to another (Rspamd's PHISHING, SpamAssassin's
// HTTPS_HTTP_MISMATCH family), with the exceptions that keep ordinary newsletters clean.
import { parse as parseDomain } from 'tldts';
import type { Anchor } from './extract.ts';
import { parseUrl, trimWith, type ParsedUrl } from './host.ts';

// Suffixes that are also file extensions: an anchor reading "setup.py" or "notes.zip" names a file, not a site.
const FILE_LIKE = new Set(['py', 'sh', 'md', 'rs', 'pl', 'pm', 'ps', 'so', 'zip', 'mov', 'exe', 'txt', 'cc', 'cs', 'js', 'in', 'am', 'is', 'it']);

const OPENERS = new Set([...' \t\n<([{"\'«'].map((c) => c.charCodeAt(0)));
const CLOSERS = new Set([...' \t\n>)]}"\'».,;:!?'].map((c) => c.charCodeAt(0)));
const edges = (s: string) => trimWith(s, (c) => OPENERS.has(c), (c) => CLOSERS.has(c));
const EMBEDDED = /(?:https?:\/\/|www\.)[^\s<>"'()[\]]+/i;

/** The URL an anchor's text shows, when the text is a URL or a domain (or holds an explicit http:// or www. URL). */
export function displayedUrl(text: string): ParsedUrl | undefined {
  if (!text || text.length > 200) return undefined;
  let candidate = edges(text);
  let bare = false;
  if (/\s/.test(candidate)) {
    const m = EMBEDDED.exec(candidate);
    if (!m) return undefined;
    candidate = edges(m[0]);
  } else if (!/^(?:https?:\/\/|www\.)/i.test(candidate)) {
    bare = true;
  }
  if (!candidate.includes('.') || candidate.includes('@')) return undefined;
  const u = parseUrl(/^https?:/i.test(candidate) ? candidate : `http://${candidate}`);
  if (!u || u.ip || !u.label || !/^[a-z0-9.-]+$/.test(u.host)) return undefined;
  const d = parseDomain(u.host, { extractHostname: false, allowPrivateDomains: true, detectIp: false });
  if (!d.isIcann && !d.isPrivate) return undefined;
  if (bare && FILE_LIKE.has(d.publicSuffix ?? '')) return undefined;
  return u;
}

export interface Mismatch {
  shown: string;
  goes: string;
  /** The shown domain is protected (a brand or our own). */
  protectedShown: boolean;
  /** The link goes to a domain the message itself names as its sender's. */
  toSender: boolean;
}

/**
 * Compares each link's shown domain with its target. Not a mismatch: the same registrable domain, the same name
 * under another suffix (amazon.de for amazon.com), a redirect that carries the shown address in its query (tracking
 * links of mailing services), and a link to one of the sender's own domains, unless the shown domain is protected.
 */
export function anchorMismatches(
  anchors: readonly Anchor[],
  senderDomains: ReadonlySet<string>,
  isProtected: (domain: string) => boolean,
): Mismatch[] {
  const out: Mismatch[] = [];
  for (const { url, text } of anchors) {
    if ((url.scheme !== 'http' && url.scheme !== 'https') || !url.host) continue;
    const shown = displayedUrl(text);
    if (!shown) continue;
    if (shown.domain === url.domain || (url.label && shown.label === url.label)) continue;
    const protectedShown = isProtected(shown.domain);
    const toSender = senderDomains.has(url.domain);
    if (!protectedShown) {
      if (toSender) continue;
      const q = url.url.indexOf('?');
      if (q >= 0 && carries(url.url.slice(q), shown.host)) continue;
    }
    out.push({ shown: shown.host, goes: url.host, protectedShown, toSender });
    if (out.length >= 20) break;
  }
  return out;
}

function carries(query: string, host: string): boolean {
  let q = query.toLowerCase();
  if (q.includes('%')) {
    try {
      q = decodeURIComponent(q);
    } catch {
      // A malformed escape: compare the text as it is.
    }
  }
  const i = q.indexOf(host);
  return i > 0 && /[=/.]/.test(q[i - 1]);
}
