// HTML tricks of bulk mail: text hidden from the reader but shown to filters, words split by comments, a page that
// is only images, and a body rewritten font by font. Regular expressions with bounded repeats over a capped prefix.

export interface HtmlTraits {
  /** Text set in font size 1 or a CSS size under 5 px/pt: room for words meant for filters, not people. */
  tiny: boolean;
  /** Text whose colour equals the page background, or hidden by CSS. */
  invisible: string | undefined;
  /** A word split by an HTML comment (vi<!-- x -->agra). */
  commentSplit: boolean;
  /** Images with almost no text beside them. */
  imageOnly: boolean;
  fontTags: number;
  images: number;
  links: number;
  /** The visible text (tags, scripts and styles removed; entities for space and a few others decoded). */
  text: string;
}

/** Most characters of HTML read; the tricks sit in the first screens. */
export const HTML_CAP = 64 * 1024;

// The spellings of the two colours hidden text nearly always uses, so that "white" on "#FFF" counts as equal.
const NAMED: Record<string, string> = { white: '#ffffff', '#fff': '#ffffff', fff: '#ffffff', black: '#000000', '#000': '#000000' };

function colour(v: string): string {
  const c = v.trim().toLowerCase().replace(/^["']|["']$/g, '');
  return NAMED[c] ?? (c.startsWith('#') || !/^[0-9a-f]{6}$/.test(c) ? c : `#${c}`);
}

const ENTITIES: Record<string, string> = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', '#36': '$', '#33': '!' };

/**
 * Tags, comments, scripts and styles removed in one linear pass: each `<` jumps to the end of its construct with
 * indexOf, and an unclosed construct ends the text, so no input makes it quadratic.
 */
function visibleText(html: string, lower: string): string {
  let out = '';
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      out += html.slice(i);
      break;
    }
    out += html.slice(i, lt) + ' ';
    const past = (at: number, token: string): number => (at < 0 ? -1 : at + token.length);
    let end: number;
    if (lower.startsWith('<!--', lt)) end = past(lower.indexOf('-->', lt + 4), '-->');
    else if (lower.startsWith('<script', lt) || lower.startsWith('<style', lt)) {
      const close = lower.indexOf(lower.startsWith('<script', lt) ? '</script' : '</style', lt);
      end = close < 0 ? -1 : past(lower.indexOf('>', close), '>');
    } else end = past(lower.indexOf('>', lt), '>');
    if (end < 0) break;
    i = end;
  }
  return out.replace(/&(#?[a-z0-9]{2,6});/gi, (e, n: string) => ENTITIES[n.toLowerCase()] ?? e).replace(/\s+/g, ' ').trim();
}

export function htmlTraits(input: string): HtmlTraits {
  const html = input.length > HTML_CAP ? input.slice(0, HTML_CAP) : input;
  const lower = html.toLowerCase();
  // Page background: the <body> bgcolor or CSS background, white when none is given.
  const bgMatch = /<body\b[^>]{0,500}?(?:bgcolor\s*=\s*|background(?:-color)?\s*:\s*)(["']?#?[a-z0-9]{3,20})/.exec(lower);
  const bg = bgMatch ? colour(bgMatch[1]) : '#ffffff';
  let invisible: string | undefined;
  const colourRe = /<font\b[^>]{0,300}?\bcolor\s*=\s*(["']?#?[a-z0-9]{3,20})|[\s;"']color\s*:\s*(#?[a-z0-9]{3,20})/g;
  for (let m = colourRe.exec(lower), n = 0; m && n < 500; m = colourRe.exec(lower), n++) {
    if (colour(m[1] ?? m[2]) !== bg) continue;
    // Only when visible-looking text follows before the next tag: a white table cell border is not hidden text.
    const after = lower.slice(colourRe.lastIndex, colourRe.lastIndex + 400);
    const close = after.indexOf('>');
    const next = close < 0 ? '' : after.slice(close + 1).split('<', 1)[0];
    if (/[a-z]{3}/.test(next)) {
      invisible = `color ${colour(m[1] ?? m[2])} on ${bg}`;
      break;
    }
  }
  if (!invisible && /(?:display\s*:\s*none|visibility\s*:\s*hidden)/.test(lower)) invisible = 'hidden by css';
  const tiny = /<font\b[^>]{0,300}?\bsize\s*=\s*["']?(?:1|-[1-9])\b|font-size\s*:\s*(?:[0-4](?:\.\d+)?\s*(?:px|pt)|0\b)/.test(lower);
  const commentSplit = /[a-z]<!--[^>]{0,200}?-->[a-z]/.test(lower);
  let fontTags = 0;
  for (let i = lower.indexOf('<font'); i >= 0 && fontTags < 10_000; i = lower.indexOf('<font', i + 5)) fontTags++;
  let images = 0;
  for (let i = lower.indexOf('<img'); i >= 0 && images < 10_000; i = lower.indexOf('<img', i + 4)) images++;
  let links = 0;
  for (let i = lower.indexOf('href'); i >= 0 && links < 10_000; i = lower.indexOf('href', i + 4)) links++;
  const text = visibleText(html, lower);
  const letters = text.replace(/[^A-Za-z]/g, '').length;
  return { tiny, invisible, commentSplit, imageOnly: images > 0 && letters < 200, fontTags, images, links, text };
}
