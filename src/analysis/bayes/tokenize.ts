// Turns one parsed message into the set of tokens the statistical classifier counts (SpamBayes-style features).
import type { MessageView } from '../message-view.ts';

/** Bounds on what a hostile message can make the tokenizer do. */
export const TOKEN_LIMITS = {
  /** Distinct tokens kept per message; the rest are ignored. */
  maxTokens: 3_000,
  /** Characters of decoded text (and of stripped HTML) looked at. */
  maxTextChars: 120_000,
  /** Characters of one header value looked at. */
  maxHeaderChars: 1_000,
  /** Received headers looked at, from the top. */
  maxReceived: 6,
  /** URLs looked at. */
  maxUrls: 200,
} as const;

// Header names that say how a mailbox stored the message, not what was sent: counting them would learn the
// collector, not the sender.
const IGNORED_HEADERS = /^(?:x-spam|status$|x-status$|x-keywords$|x-uid$|x-uidl$|content-length$|lines$|delivered-to$|x-original-to$|received$|return-path$)/;

const TRIM = /^[\s"'`(){}[\]<>.,:;!?*_\-=+|/\\~^]+|[\s"'`(){}[\]<>.,:;!?*_\-=+|/\\~^]+$/g;
// The ASCII characters TRIM strips: a word that neither starts nor ends with one (nor with white space, which a word
// split at white space cannot hold) is left as it is, without running the regex.
const TRIMMED = new Uint8Array(128);
for (const c of '"\'`(){}[]<>.,:;!?*_-=+|/\\~^') TRIMMED[c.charCodeAt(0)] = 1;
const URL_RE = /\bhttps?:\/\/[^\s"'<>()]{1,300}/gi;
const TAG_RE = /<\s*([a-z][a-z0-9]{0,9})\b/gi;
const HTML_TAG_TOKENS = new Set(['font', 'table', 'img', 'a', 'form', 'input', 'script', 'style', 'center', 'b', 'i', 'u', 'br', 'p', 'div', 'span', 'td', 'map', 'area', 'iframe', 'object', 'embed', 'blink', 'marquee']);

class TokenSet {
  readonly set = new Set<string>();
  add(t: string): void {
    if (this.set.size < TOKEN_LIMITS.maxTokens) this.set.add(t);
  }
  get full(): boolean {
    return this.set.size >= TOKEN_LIMITS.maxTokens;
  }
}

/** Words of free text: lower-cased, NFKC-normalised, 3–12 characters; longer ones as a length class (Graham, SpamBayes). */
const ASCII = /^[\x00-\x7f]*$/;

function addWords(out: TokenSet, text: string, prefix = ''): void {
  const s = text.length > TOKEN_LIMITS.maxTextChars ? text.slice(0, TOKEN_LIMITS.maxTextChars) : text;
  let norm: string;
  try {
    // NFKC leaves ASCII as it is, and most mail text is ASCII: the check is far cheaper than the normalisation.
    norm = (ASCII.test(s) ? s : s.normalize('NFKC')).toLowerCase();
  } catch {
    norm = s.toLowerCase();
  }
  for (const raw of norm.split(/\s+/)) {
    if (out.full) return;
    if (!raw) continue;
    const w = raw.length > 60 ? raw.slice(0, 60) : TRIMMED[raw.charCodeAt(0)] || TRIMMED[raw.charCodeAt(raw.length - 1)] ? raw.replace(TRIM, '') : raw;
    const n = w.length;
    if (n < 3) continue;
    if (n <= 12) {
      out.add(prefix + w);
      // Runs of '$' or '!' and digits-with-money read differently from the bare word; keep both shapes.
      if (/[!$%]/.test(w)) out.add(`${prefix}punct:${w.replace(/[^!$%]/g, '').slice(0, 4)}`);
      continue;
    }
    if (w.includes('@') && n <= 60) {
      const at = w.lastIndexOf('@');
      out.add(`${prefix}email:${w.slice(at + 1)}`);
      continue;
    }
    // A long word is mostly noise (base64, hashes), but its first letter and size still tell something.
    out.add(`${prefix}skip:${w[0]}${Math.min(Math.floor(n / 10) * 10, 60)}`);
  }
}

function hostTokens(out: TokenSet, prefix: string, host: string): void {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(h)) {
    out.add(`${prefix}ip`);
    out.add(`${prefix}ip:${h.split('.').slice(0, 2).join('.')}`);
    return;
  }
  const labels = h.split('.').filter(Boolean);
  if (labels.length === 0) return;
  // The last two and last three labels: the registrable part and the host under it, without per-host noise.
  out.add(`${prefix}${labels.slice(-2).join('.')}`);
  if (labels.length > 2) out.add(`${prefix}${labels.slice(-3).join('.')}`);
}

function addUrls(out: TokenSet, text: string, seen: { n: number; urls: Set<string> }): void {
  const s = text.length > TOKEN_LIMITS.maxTextChars ? text.slice(0, TOKEN_LIMITS.maxTextChars) : text;
  URL_RE.lastIndex = 0;
  for (let m = URL_RE.exec(s); m && seen.n < TOKEN_LIMITS.maxUrls && !out.full; m = URL_RE.exec(s)) {
    seen.n++;
    const u = m[0];
    // The tokens of a URL depend on its text alone: a URL seen before in this message adds none (it still counts).
    if (seen.urls.has(u)) continue;
    seen.urls.add(u);
    const scheme = u.slice(0, u.indexOf(':')).toLowerCase();
    out.add(`proto:${scheme}`);
    const rest = u.slice(scheme.length + 3);
    const hostPort = rest.split(/[/?#]/, 1)[0];
    const host = hostPort.replace(/^[^@]*@/, '').replace(/:\d*$/, '');
    if (hostPort.includes('@')) out.add('url:userinfo');
    if (/:\d+$/.test(hostPort)) out.add('url:port');
    if (host) hostTokens(out, 'url:', host);
    const pathPart = rest.slice(hostPort.length);
    if (/%[0-9a-f]{2}/i.test(pathPart)) out.add('url:escaped');
    for (const seg of pathPart.toLowerCase().split(/[/?#&=.]+/)) {
      if (seg.length >= 3 && seg.length <= 12 && /^[a-z]+$/.test(seg)) out.add(`url:path:${seg}`);
    }
  }
}

/** Removes tags, comments, scripts and styles; decodes the few entities that hide words. */
export function stripHtml(html: string): string {
  const s = html.length > TOKEN_LIMITS.maxTextChars ? html.slice(0, TOKEN_LIMITS.maxTextChars) : html;
  return s
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]{0,2000}>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&amp;/gi, '&')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/&quot;/gi, '"')
    .replace(/&#(\d{1,6});/g, (_, d: string) => {
      const c = Number(d);
      return c > 0 && c < 0x110000 ? String.fromCodePoint(c) : ' ';
    });
}

function addHeaderTokens(out: TokenSet, view: MessageView): void {
  const cap = (v: string) => (v.length > TOKEN_LIMITS.maxHeaderChars ? v.slice(0, TOKEN_LIMITS.maxHeaderChars) : v);
  let names = 0;
  for (const h of view.headers) {
    if (names++ > 100) break;
    if (!h.name || IGNORED_HEADERS.test(h.name)) continue;
    out.add(`hdr:${h.name.slice(0, 40)}`);
  }
  const from = view.header('from');
  if (from === undefined) out.add('from:none');
  else {
    const v = cap(from).toLowerCase();
    const addr = /<([^<>]*)>/.exec(v)?.[1] ?? v.trim();
    const at = addr.lastIndexOf('@');
    if (at >= 0) {
      hostTokens(out, 'from:domain:', addr.slice(at + 1).replace(/[>\s].*$/, ''));
      out.add(`from:local:${/\d/.test(addr.slice(0, at)) ? 'digits' : 'alpha'}`);
    } else out.add('from:noaddr');
    const name = v.includes('<') ? v.slice(0, v.indexOf('<')).replace(/"/g, '').trim() : '';
    if (!name) out.add('from:noname');
    else addWords(out, name, 'from:name:');
  }
  const replyTo = view.header('reply-to');
  if (replyTo !== undefined && from !== undefined) {
    const domain = (s: string) => /@([^>\s]+)/.exec(s.toLowerCase())?.[1];
    out.add(domain(replyTo) === domain(from) ? 'reply-to:same-domain' : 'reply-to:other-domain');
  }
  const to = view.header('to');
  if (to === undefined) out.add('to:none');
  else {
    const n = (cap(to).match(/@/g) ?? []).length;
    out.add(`to:count:${n > 5 ? 'many' : n}`);
  }
  const mailer = view.header('x-mailer') ?? view.header('user-agent');
  if (mailer !== undefined) {
    for (const w of cap(mailer).toLowerCase().split(/[\s/;()]+/).slice(0, 3)) if (w) out.add(`x-mailer:${w.slice(0, 20)}`);
  } else out.add('x-mailer:none');
  const mid = view.messageId;
  if (mid === undefined) out.add('mid:none');
  else {
    const m = /@([^>\s]+)>?\s*$/.exec(mid.toLowerCase());
    if (m) hostTokens(out, 'mid:', m[1]);
    else out.add('mid:nodomain');
  }
  const ct = view.header('content-type');
  if (ct !== undefined) {
    const v = cap(ct).toLowerCase();
    out.add(`ct:${v.split(';', 1)[0].trim().slice(0, 40)}`);
    const cs = /charset\s*=\s*"?([a-z0-9_.:-]{1,30})/.exec(v);
    if (cs) out.add(`charset:${cs[1]}`);
  } else out.add('ct:none');
  const cte = view.header('content-transfer-encoding');
  if (cte !== undefined) out.add(`cte:${cap(cte).toLowerCase().trim().slice(0, 20)}`);
  const date = view.header('date');
  if (date === undefined) out.add('date:none');
  else {
    const tz = /([+-]\d{4})\s*(?:\([^)]*\))?\s*$/.exec(cap(date));
    out.add(tz ? `date:tz:${tz[1]}` : 'date:tz:none');
  }
  // Received hints: the relays' names and address blocks (SpamBayes mines these the same way).
  const received = view.headerAll('received');
  for (let i = 0; i < received.length && i < TOKEN_LIMITS.maxReceived; i++) {
    const r = cap(received[i]).toLowerCase();
    const fromHost = /^from\s+([a-z0-9.-]{1,100})/.exec(r)?.[1];
    if (fromHost) hostTokens(out, 'received:', fromHost);
    const ip = /\[(\d{1,3}(?:\.\d{1,3}){3})\]/.exec(r)?.[1];
    if (ip) out.add(`received:ip:${ip.split('.').slice(0, 2).join('.')}`);
  }
}

/**
 * The distinct tokens of a message: subject words, decoded text and HTML-stripped text, URL hosts, and hints from
 * selected headers. Uses the shared parse; never throws (a message that does not parse still has headers).
 */
export async function tokenize(view: MessageView): Promise<string[]> {
  const out = new TokenSet();
  try {
    if (view.subject !== undefined) addWords(out, view.subject.slice(0, 1_000), 'subject:');
    else out.add('subject:none');
    addHeaderTokens(out, view);
    const { email, error } = await view.parse();
    if (error || !email) out.add('mime:unparsed');
    else {
      const urlSeen = { n: 0, urls: new Set<string>() };
      if (email.text) {
        addWords(out, email.text);
        addUrls(out, email.text, urlSeen);
      }
      if (email.html) {
        out.add('body:html');
        if (!email.text) out.add('body:html-only');
        const html = email.html.length > TOKEN_LIMITS.maxTextChars ? email.html.slice(0, TOKEN_LIMITS.maxTextChars) : email.html;
        TAG_RE.lastIndex = 0;
        let tags = 0;
        for (let m = TAG_RE.exec(html); m && tags < 2_000; m = TAG_RE.exec(html)) {
          tags++;
          const t = m[1].toLowerCase();
          if (HTML_TAG_TOKENS.has(t)) out.add(`html:${t}`);
        }
        // Text already seen in the text/plain alternative adds nothing; the HTML-only words are what count.
        if (!email.text) addWords(out, stripHtml(html));
        addUrls(out, html, urlSeen);
      }
      const atts = email.attachments ?? [];
      if (atts.length) out.add(`att:count:${atts.length > 3 ? 'many' : atts.length}`);
      for (const a of atts.slice(0, 20)) {
        out.add(`att:type:${String(a.mimeType ?? '').toLowerCase().slice(0, 40)}`);
        const ext = /\.([a-z0-9]{1,8})$/i.exec(a.filename ?? '')?.[1];
        if (ext) out.add(`att:ext:${ext.toLowerCase()}`);
      }
    }
  } catch {
    out.add('tokenizer:error');
  }
  return [...out.set];
}
