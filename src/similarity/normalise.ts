// The text of a message reduced to what stays the same across the copies of one campaign: lower case, no quoted
// reply, no signature, and numbers, URLs, addresses, random tokens and the recipient's name replaced by placeholders.

/** Most characters of body text looked at; a campaign shows itself in its first pages (about 4,000 words). */
export const MAX_TEXT_CHARS = 24 * 1024;
/** Most tokens shingled, which bounds the MinHash cost of a long message. */
export const MAX_TOKENS = 4_000;

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"')\]]+/giu;
const EMAIL_RE = /[^\s<>"'(),;:@]+@[^\s<>"'(),;:@]+\.[a-z]{2,}/giu;
// A greeting: up to four words after the salutation, ending the line or followed by a comma, are a name.
const GREETING_RE = /^([ \t]*(?:dear|hello|hi|hey|good (?:morning|afternoon|evening)|greetings))[ \t]+\p{L}[\p{L}.'-]*(?:[ \t]+\p{L}[\p{L}.'-]*){0,3}(?=[ \t]*(?:[,!:]|$))/gimu;
const RULE = /^[ \t]*[-_=~*]{10,}/gm;
const NUMBER_RE = /\p{N}(?:[\p{N}.,:\/ -]*\p{N})?/gu;
// Letters of any script and digits; everything else separates tokens.
const TOKEN_RE = /[\p{L}\p{N}]+/gu;
const VOWELS = /[aeiouyàáâäèéêëìíîïòóôöùúûü]/u;

/** Whether a token has a digit of any script; ASCII without the regular expression, the common case by far. */
function hasDigit(t: string): boolean {
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) return true;
    if (c > 0x7f) return /\p{N}/u.test(t);
  }
  return false;
}

/**
 * Whether a token looks machine-made: a tracking id, a hash, a random file-name part. Tokens with a digit are
 * numbers and handled apart; here, long letter runs with few vowels (what a random generator writes) count.
 */
function randomLooking(t: string): boolean {
  if (t.length < 12) return false;
  let vowels = 0;
  for (const c of t) if (VOWELS.test(c)) vowels++;
  return vowels / t.length < 0.2 || t.length > 24;
}

/** The words of the recipient's name (display name and address local part), which a campaign personalises. */
export function nameWords(to: string | undefined): Set<string> {
  const out = new Set<string>();
  if (!to) return out;
  const v = to.slice(0, 1_000).toLowerCase();
  const local = /<?([^\s<>@"]+)@/.exec(v)?.[1] ?? '';
  const display = v.replace(/<[^>]*>/g, ' ').replace(/[^\s<>"]+@[^\s<>"]+/g, ' ');
  for (const w of `${display} ${local.replace(/[._+-]/g, ' ')}`.match(TOKEN_RE) ?? []) if (w.length >= 3) out.add(w);
  return out;
}

/**
 * Drops quoted reply lines, everything after a signature delimiter ("-- " on its own line, RFC 3676 §4.3), and a
 * footer below a rule line (ten or more of - _ = ~ *) in the text's latter three quarters: mailing lists and bulk
 * senders put the same footer under unrelated messages, and in a short message it would outweigh the message.
 */
function ownText(text: string): string {
  const sig = text.search(/^-- ?$/m);
  let body = (sig >= 0 ? text.slice(0, sig) : text).replace(/^[ \t]*>.*$/gm, '');
  RULE.lastIndex = Math.floor(body.length / 4);
  const rule = RULE.exec(body);
  if (rule) body = body.slice(0, rule.index);
  return body;
}

/**
 * The normalised tokens of a subject and a body. `names` are replaced wherever they appear; the greeting's words
 * are replaced even when the name is not the recipient's.
 */
export function normalisedTokens(subject: string, body: string, names: ReadonlySet<string>): string[] {
  let text = ownText(body.length > MAX_TEXT_CHARS ? body.slice(0, MAX_TEXT_CHARS) : body).toLowerCase();
  // The address and URL patterns are the slow part of a long text: they run only when one can match.
  if (text.includes('http') || text.includes('www.')) text = text.replace(URL_RE, ' xurlx ');
  // Runs this long without a space are encoded data or junk; cutting them here also keeps EMAIL_RE linear.
  text = text.replace(/\S{64,}/g, ' xrndx ');
  if (text.includes('@')) text = text.replace(EMAIL_RE, ' xemailx ');
  text = text
    .replace(GREETING_RE, '$1 xnamex')
    // "1,250.00", "20/11/2025", "+1 555 0100": one number each, however a copy groups its digits.
    .replace(NUMBER_RE, ' 0 ');
  const subj = subject.toLowerCase().replace(/^(?:\s*(?:re|fw|fwd|aw|sv|tr)\s*:)+/i, '');
  const out: string[] = [];
  for (const m of `${subj}\n${text}`.matchAll(TOKEN_RE)) {
    const t = m[0];
    if (hasDigit(t)) {
      if (out[out.length - 1] !== '#') out.push('#');
    }
    else if (names.has(t)) out.push('xnamex');
    else if (randomLooking(t)) out.push('xrndx');
    else out.push(t);
    if (out.length >= MAX_TOKENS) break;
  }
  return out;
}

/** The normalised text as one string, for the TLSH digest. */
export function normalisedText(tokens: readonly string[]): string {
  return tokens.join(' ');
}

/**
 * An attachment name with its variable parts replaced: runs with a digit become "#", random-looking runs "*".
 * "Invoice_88213.pdf" → "invoice_#.pdf".
 */
export function normaliseName(name: string): string {
  return name
    .slice(0, 255)
    .toLowerCase()
    .replace(/[\p{L}\p{N}]+/gu, (t) => (/\p{N}/u.test(t) ? '#' : randomLooking(t) ? '*' : t));
}
