// Body wording: the sales, money and urgency phrases of bulk mail, and words spelt to slip past word filters.

/** What the wording of a body shows. */
export interface Wording {
  /** Distinct sales/money/urgency phrases found. */
  phrases: number;
  /** The first few, for the symbol's detail. */
  found: string[];
  /** Removal instructions of list-less bulk mail ("to be removed", "reply with remove in the subject"). */
  removal: boolean;
  /** The "this is not spam" / US bill S.1618 disclaimer of 1990s–2000s bulk mail. */
  disclaimer: boolean;
  /** Words spelt with digits or spaces to dodge filters (v1agra, m0rtgage, F R E E). */
  obfuscated: string | undefined;
  /** Words of 3+ letters, and how many of them are all capitals. */
  words: number;
  capsWords: number;
  /** Distinct words of advance-fee ("419") letters: next of kin, beneficiary, transfer, confidential … */
  advanceFee: number;
  /** Dollar amounts ("$5", "$ 1,000"), counted up to 100. */
  dollars: number;
}

/** Most characters of body text a check reads: the pitch of bulk mail sits in its first screens. */
export const TEXT_CAP = 16 * 1024;

// Each phrase counts once; lower case, matched on a lower-cased body with runs of white space made one space.
const PHRASES = [
  'click here', 'click below', 'act now', 'order now', 'order today', 'call now', 'apply now', 'limited time',
  'offer expires', "don't delay", 'do not delay', 'risk free', 'risk-free', 'no obligation', 'free gift',
  '100% free', 'absolutely free', 'money back', 'satisfaction guaranteed', 'guaranteed', 'special promotion',
  'special offer', 'lowest price', 'lowest rate', 'best price', 'save up to', '% off', 'credit card',
  'no credit check', 'bad credit', 'debt', 'mortgage', 'refinanc', 'home loan', 'interest rate', 'cash',
  'make money', 'extra income', 'from home', 'be your own boss', 'financial freedom', 'million dollars',
  'dear friend', 'you have been selected', 'congratulations', 'winner', 'you have won', 'prize', 'bulk e',
  'email marketing', 'e-mail marketing', 'mass e', 'opt-in', 'opt in', 'weight loss', 'lose weight',
  'prescription', 'pharmacy', 'herbal', 'growth hormone', 'enlarge', 'casino', 'investment', 'profit',
  'amazing', 'incredible', 'miracle', 'no experience', 'no hidden', 'order form', 'toll free', 'toll-free',
  '1-800', '1-888', '1-877', '1-866', 'you will receive', 'cancel at any time', 'pre-approved', 'approved',
  'wholesale', 'direct marketing', 'multi-level', 'network marketing', 'this message is sent', 'one time',
  'once in a lifetime', 'why pay', 'compare', 'unlimited', 'instant', 'billion', 'per week', 'per month',
  'earn', 'free!', 'free of charge', 'for free', 'dollars', 'income', 'business opportunity', 'insurance',
  'quote', 'satisfaction', 'customers', 'sign up', 'join millions', 'million', 'offer', 'save', 'free',
];

// One alternation, longest first so that "free!" wins over "free" at the same place; the body is scanned once.
const PHRASE_RE = new RegExp(
  [...PHRASES]
    .sort((a, b) => b.length - a.length)
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('|'),
  'g',
);

// The vocabulary of advance-fee fraud: a stranger, a fortune in a bank abroad, and a need for discretion.
const ADVANCE_FEE: readonly string[] = ['next of kin', 'beneficiary', 'transfer', 'confidential', 'million', 'us$', 'united states dollars', 'bank', 'fund', 'assistance', 'foreign', 'partner', 'late ', 'government', 'nigeria', 'urgent', 'strict'];

const REMOVAL_RE =
  /\b(?:to be removed|to remove your|removed? from (?:our|this|the) (?:mailing |e-?mail )?list|remove in the subject|reply with (?:the word )?["']?remove|(?:subject|subject line)[^.\n]{0,20}["']?remove\b|click here to (?:be )?remove|to unsubscribe from (?:our|this) (?:mailing|e-?mail) list|opt[- ]?out)/;
const DISCLAIMER_RE = /\b(?:s\.? ?1618|section 301|this (?:e-?mail |message )?is not (?:spam|unsolicited)|not (?:considered )?spam|sent in compliance|under bill)/;
// Sales words spelt with digits or symbols for letters, or with dots between the letters (v1agra, m0rtgage,
// v.i.a.g.r.a): no one writes them so but to slip past a word filter. A match made of letters only is the plain
// word and does not count.
const LOOKALIKE: Record<string, string> = { a: 'a@4', e: 'e3', i: 'i1!|l', o: 'o0', s: 's$5', l: 'l1|', g: 'g9' };
const STEMS = ['viagra', 'cialis', 'mortgage', 'pharmacy', 'prescription', 'rolex', 'cash', 'free', 'porn', 'money', 'credit', 'casino', 'valium', 'xanax', 'penis', 'replica', 'refinance', 'income'];
const OBFUSCATED_RE = new RegExp(
  `(?<![a-z0-9])(?:${STEMS.map((w) => [...w].map((c) => `[${(LOOKALIKE[c] ?? c).replace(/[$|!]/g, '\\$&')}]`).join('[._*-]?')).join('|')})(?![a-z0-9])`,
  'g',
);
// Four or more capitals each followed by one space ("F R E E"), counted only when the letters spell a sales word:
// newsletters space out headings ("M E D I A") for typography, and lower-case runs are lists ("a b c d").
const SPACED_RE = /(?<![A-Za-z])(?:[A-Z] ){3,}[A-Z](?![A-Za-z])/g;
const SPACED_WORDS = new Set([...STEMS, 'sex', 'loan', 'loans', 'debt', 'winner', 'offer', 'order']);

/** Words of three or more ASCII letters, and how many of them are all capitals; one pass, no regular expression. */
function countCaps(text: string): { words: number; capsWords: number } {
  let words = 0;
  let caps = 0;
  let len = 0;
  let upper = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 32;
    const isUpper = c >= 65 && c <= 90;
    const isLower = c >= 97 && c <= 122;
    if (isUpper || isLower) {
      len++;
      if (isUpper) upper++;
      continue;
    }
    if (len >= 3) {
      words++;
      if (upper === len) caps++;
    }
    len = 0;
    upper = 0;
  }
  return { words, capsWords: caps };
}

export function wordingOf(body: string): Wording {
  const text = body.length > TEXT_CAP ? body.slice(0, TEXT_CAP) : body;
  const lower = text.toLowerCase().replace(/\s+/g, ' ');
  const seen = new Set<string>();
  PHRASE_RE.lastIndex = 0;
  for (let m = PHRASE_RE.exec(lower); m; m = PHRASE_RE.exec(lower)) seen.add(m[0]);
  let obf: string | undefined;
  OBFUSCATED_RE.lastIndex = 0;
  for (let m = OBFUSCATED_RE.exec(lower); m && !obf; m = OBFUSCATED_RE.exec(lower)) if (/[^a-z]/.test(m[0])) obf = m[0];
  let shout: string | undefined;
  SPACED_RE.lastIndex = 0;
  for (let m = obf ? null : SPACED_RE.exec(text), n = 0; m && !shout && n < 100; m = SPACED_RE.exec(text), n++) {
    if (SPACED_WORDS.has(m[0].replace(/ /g, '').toLowerCase())) shout = m[0];
  }
  const { words, capsWords } = countCaps(text);
  let dollars = 0;
  const digit = (at: number) => lower.charCodeAt(at) >= 48 && lower.charCodeAt(at) <= 57;
  for (let i = lower.indexOf('$'); i >= 0 && dollars < 100; i = lower.indexOf('$', i + 1)) {
    if (digit(i + 1) || (lower[i + 1] === ' ' && digit(i + 2))) dollars++;
  }
  let advanceFee = 0;
  for (const w of ADVANCE_FEE) if (lower.includes(w)) advanceFee++;
  return {
    advanceFee,
    phrases: seen.size,
    found: [...seen].slice(0, 6),
    removal: REMOVAL_RE.test(lower),
    disclaimer: DISCLAIMER_RE.test(lower),
    obfuscated: obf ?? shout,
    words,
    capsWords,
    dollars,
  };
}

// A closing line that is one token of random letters, or letters around a run of digits ("xay1992361y"): bulk tools
// add one to every copy so that no two copies share a checksum. Random letters show as long runs of consonants,
// which words of the languages in mail rarely have in a single token of this length.
const TAIL_TOKEN_RE = /^[A-Za-z0-9]{7,60}$/;
const LETTERS_DIGITS_LETTERS_RE = /^[a-z]{1,6}\d{3,}[a-z]{1,6}$/i;
const CONSONANT_RUN_RE = /[bcdfghjklmnpqrstvwxyz]{5}/;

/** The random token closing the body, if its last few lines have one. Reads at most the last 2 KiB. */
export function randomTail(body: string): string | undefined {
  const lines = body.slice(-2048).split(/\r?\n/);
  let seen = 0;
  for (let i = lines.length - 1; i >= 0 && seen < 4; i--) {
    const line = lines[i].trim();
    if (!line) continue;
    seen++;
    if (!TAIL_TOKEN_RE.test(line)) continue;
    if (LETTERS_DIGITS_LETTERS_RE.test(line)) return line;
    if (line.length >= 15 && /^[a-z]+$/.test(line) && CONSONANT_RUN_RE.test(line)) return line;
  }
  return undefined;
}

// The footer of a company's newsletter: a copyright notice together with the subscriber's way out or the sender's
// privacy terms. List-less bulk spam of the corpus years leaves both out (0 of 246 train-half spam, 63 of 127
// hard ham; README.md).
const COPYRIGHT_RE = /all rights reserved|copyright|\(c\) ?(?:19|20)\d\d|©/;
const SUBSCRIBER_RE =
  /privacy (?:policy|statement|notice)|you (?:have )?(?:subscribed|signed up|registered)|your subscription|subscribed to|forward (?:this|it) to a friend|tell a friend|manage your (?:subscription|account|e-?mail|preferences)|update your (?:profile|preferences|e-?mail)|change your (?:e-?mail|preferences|subscription)/;

/** Whether the end of the body reads as a company newsletter's footer. Reads at most the last 8 KiB. */
export function newsletterFooter(body: string): boolean {
  const tail = body.slice(-8192).toLowerCase();
  return COPYRIGHT_RE.test(tail) && SUBSCRIBER_RE.test(tail);
}
