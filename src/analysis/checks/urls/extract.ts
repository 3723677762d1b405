// The URLs of a message, from the shared parse: links, forms and embedded resources of the HTML (htmlparser2) and
// URLs written in the text (linkify-it). Made once per message and shared by every check that asks for it.
import { Parser } from 'htmlparser2';
import { LinkifyIt } from 'linkify-it';
import type { MessageView } from '../../message-view.ts';
import { parseUrl, trimWith, type HostInfo, type ParsedUrl } from './host.ts';

export type UrlSource = 'a' | 'area' | 'form' | 'img' | 'iframe' | 'script' | 'text';

export interface FoundUrl extends ParsedUrl {
  /** The URL as written (tabs and line breaks removed), at most MAX_URL_CHARS. */
  url: string;
  /** Where it was first seen. */
  source: UrlSource;
}

/** A link of the HTML with the text it shows. */
export interface Anchor {
  url: FoundUrl;
  /** Visible text inside the link, whitespace collapsed, at most MAX_ANCHOR_TEXT characters. */
  text: string;
}

/** An HTML form of the body. */
export interface HtmlForm {
  /** Where it posts; undefined when the form has no absolute action. */
  action?: FoundUrl;
  /** Inputs a person types into (text, email, tel, number, and inputs without a type). */
  textInputs: number;
  passwords: number;
}

export interface UrlScan {
  /** Distinct URLs in the order found, at most maxUrls. */
  urls: readonly FoundUrl[];
  /** More distinct URLs than maxUrls were present; the rest were not looked at. */
  truncated: boolean;
  anchors: readonly Anchor[];
  forms: readonly HtmlForm[];
  /** The text part (postal-mime's text, converted from the HTML when there is no text part), capped. */
  text: string;
  /** Visible text of the HTML (no script or style), capped; '' when there is no HTML of its own. */
  htmlText: string;
  /** Set when the MIME parse failed: nothing could be extracted. */
  parseError?: string;
}

export interface ExtractOptions {
  /** Most distinct URLs kept (default 500). */
  maxUrls?: number;
}

const MAX_URL_CHARS = 4096;
const MAX_ANCHOR_TEXT = 256;
const MAX_FORMS = 50;
const MAX_ANCHORS = 1_000;
// Bounds on what a hostile message can make us scan; legitimate bodies are far smaller.
const MAX_TEXT_CHARS = 512 * 1024;
const MAX_HTML_CHARS = 2 * 1024 * 1024;
const MAX_KEPT_TEXT = 256 * 1024;

const linkify = new LinkifyIt({ fuzzyLink: true, fuzzyEmail: false, fuzzyIP: false });
// Words are split on white space and the characters that end a URL in text. A word can hold a URL only around
// "://" or "x.yy"; neither contains a separator, so each such spot lies inside one word, and only the words around
// spots are looked at (a text is mostly words without one).
const SPOT = /:\/\/|[a-z0-9]\.[a-z]{2}/gi;
const SEPARATOR = /[\s<>"'`]/;
const TRAILING = new Set([...'.,;:!?)]}>\'"'].map((c) => c.charCodeAt(0)));

/** Whether the code unit at i ends a word: printable ASCII by a table, anything else as the separator class says. */
function separatorAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c > 32 && c < 127) return c === 60 || c === 62 || c === 34 || c === 39 || c === 96;
  return SEPARATOR.test(s[i]);
}
const TEXT_INPUT = new Set(['', 'text', 'email', 'tel', 'number', 'search', 'password']);
const RESOURCE: Record<string, [UrlSource, string]> = {
  img: ['img', 'src'],
  iframe: ['iframe', 'src'],
  script: ['script', 'src'],
};

class Collector {
  readonly urls: FoundUrl[] = [];
  readonly anchors: Anchor[] = [];
  readonly forms: HtmlForm[] = [];
  truncated = false;
  private seen = new Map<string, FoundUrl>();
  private hosts = new Map<string, HostInfo>();
  /** Candidate words already given to linkify-it (text and HTML text repeat the same URLs). */
  private words = new Set<string>();

  constructor(private readonly maxUrls: number) {}

  /** Records a URL; returns it (the first record of the same text) or undefined when relative or over the cap. */
  add(raw: string, source: UrlSource): FoundUrl | undefined {
    const url = raw.length > MAX_URL_CHARS ? raw.slice(0, MAX_URL_CHARS) : raw;
    const known = this.seen.get(url);
    if (known) return known;
    if (this.urls.length >= this.maxUrls) {
      // Relative references never count; anything absolute past the cap marks the scan as cut short.
      if (/^[\s\x00-\x1f]*(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(url)) this.truncated = true;
      return undefined;
    }
    const parsed = parseUrl(url, this.hosts);
    if (!parsed) return undefined;
    const found: FoundUrl = { ...parsed, url, source };
    this.seen.set(url, found);
    this.urls.push(found);
    return found;
  }

  /**
   * linkify-it over the words of a text that could hold a URL. Matching bare domains over a whole text costs about
   * ten times more than splitting it into words first, and a word without "://" or "x.yy" can hold no URL.
   */
  linkifyText(text: string): void {
    if (this.truncated || !text) return;
    const s = text.length > MAX_TEXT_CHARS ? text.slice(0, MAX_TEXT_CHARS) : text;
    SPOT.lastIndex = 0;
    for (let m = SPOT.exec(s); m; m = SPOT.exec(s)) {
      let start = m.index;
      while (start > 0 && !separatorAt(s, start - 1)) start--;
      let end = m.index + m[0].length;
      while (end < s.length && !separatorAt(s, end)) end++;
      // The next spot is searched for after this word, so every word is looked at once, in order.
      SPOT.lastIndex = end;
      const word = s.slice(start, end);
      if (this.words.has(word)) continue;
      // Each candidate costs a linkify-it call; a text made of thousands of them is cut short like too many URLs.
      if (this.words.size >= this.maxUrls * 4) {
        this.truncated = true;
        return;
      }
      this.words.add(word);
      const w = word.length > MAX_URL_CHARS ? word.slice(0, MAX_URL_CHARS) : word;
      const found = linkify.match(w);
      if (!found) continue;
      for (const f of found) {
        if (f.schema === 'mailto:') continue;
        // linkify-it ends a URL at "@" in the authority (http://paypal.com@evil.example/ gives http://paypal.com);
        // a browser goes to the host after it, so the URL is taken to the end of the word.
        const url = w.charAt(f.lastIndex) === '@' ? trimWith(w.slice(f.index), () => false, (c) => TRAILING.has(c)) : f.url;
        this.add(url, 'text');
        if (this.truncated) return;
      }
    }
  }
}

// postal-mime renders a message without an HTML part as "<div>…<br />…</div>" from its text; such HTML holds no
// links of its own, so parsing it again would only cost time.
const isDerivedHtml = (html: string): boolean => !/<(?!\/?div>|br \/>)/.test(html);

function scanHtml(html: string, out: Collector): string {
  let text = '';
  let hidden = 0; // inside script/style
  let anchor: { url?: FoundUrl; text: string } | undefined;
  let form: HtmlForm | undefined;
  const closeAnchor = () => {
    if (anchor?.url && out.anchors.length < MAX_ANCHORS) out.anchors.push({ url: anchor.url, text: anchor.text.replace(/\s+/g, ' ').trim() });
    anchor = undefined;
  };
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (name === 'script' || name === 'style') hidden++;
        if (name === 'a' || name === 'area') {
          closeAnchor();
          const href = attrs.href;
          const url = href ? out.add(href, name) : undefined;
          // An <area> shows no text of its own; only <a> links are compared with what they show.
          if (name === 'a') anchor = { url, text: '' };
        } else if (name === 'form') {
          const action = attrs.action ? out.add(attrs.action, 'form') : undefined;
          form = { action, textInputs: 0, passwords: 0 };
          if (out.forms.length < MAX_FORMS) out.forms.push(form);
        } else if (name === 'input') {
          const type = (attrs.type ?? '').trim().toLowerCase();
          if (TEXT_INPUT.has(type)) {
            // Inputs outside any form still ask the reader for something; they count as a form without an action.
            if (!form && out.forms.length < MAX_FORMS) out.forms.push((form = { textInputs: 0, passwords: 0 }));
            if (form) {
              form.textInputs++;
              if (type === 'password') form.passwords++;
            }
          }
        } else if (Object.hasOwn(RESOURCE, name)) {
          const [source, attr] = RESOURCE[name];
          const v = attrs[attr];
          if (v) out.add(v, source);
        }
      },
      ontext(data) {
        if (hidden) return;
        if (text.length < MAX_KEPT_TEXT) text += data;
        if (anchor && anchor.text.length < MAX_ANCHOR_TEXT) anchor.text = (anchor.text + data).slice(0, MAX_ANCHOR_TEXT);
      },
      onclosetag(name) {
        if ((name === 'script' || name === 'style') && hidden > 0) hidden--;
        else if (name === 'a') closeAnchor();
        else if (name === 'form') form = undefined;
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html.length > MAX_HTML_CHARS ? html.slice(0, MAX_HTML_CHARS) : html);
  parser.end();
  closeAnchor();
  return text;
}

async function scan(view: MessageView, maxUrls: number): Promise<UrlScan> {
  const { email, error } = await view.parse();
  const out = new Collector(maxUrls);
  let htmlText = '';
  const html = email?.html ?? '';
  if (html && !isDerivedHtml(html)) {
    htmlText = scanHtml(html, out);
  }
  const text = email?.text ?? '';
  out.linkifyText(text);
  out.linkifyText(htmlText);
  return {
    urls: out.urls,
    truncated: out.truncated,
    anchors: out.anchors,
    forms: out.forms,
    text: text.length > MAX_KEPT_TEXT ? text.slice(0, MAX_KEPT_TEXT) : text,
    htmlText,
    ...(error !== undefined && { parseError: error }),
  };
}

/** The key of the scans of one message in its view, one per cap. */
const SCANS = {};

/**
 * The URLs of a message. The first call per message and cap does the work; later calls, from this or any other
 * check, get the same result.
 */
export function extractUrls(view: MessageView, opts: ExtractOptions = {}): Promise<UrlScan> {
  const maxUrls = opts.maxUrls ?? 500;
  const byCap = view.derived(SCANS, () => new Map<number, Promise<UrlScan>>());
  let p = byCap.get(maxUrls);
  if (!p) byCap.set(maxUrls, (p = scan(view, maxUrls)));
  return p;
}
