// Header traits of bulk and spam-tool mail: subjects that shout, mailers and Date forms real mail programs never
// produce, and recipient lists that are hidden or too long.

/** Subject of 3+ words and 10+ letters, almost all of them capitals. */
export function subjectShouts(subject: string): boolean {
  const s = subject.slice(0, 500);
  const letters = s.replace(/[^A-Za-z]/g, '');
  if (letters.length < 10 || s.trim().split(/\s+/).length < 3) return false;
  return letters.replace(/[^A-Z]/g, '').length >= letters.length * 0.9;
}

/** "!!", "$$", "!$" or three exclamation marks anywhere. */
export function subjectExclaims(subject: string): boolean {
  const s = subject.slice(0, 500);
  return /!{2,}|\${2,}|!\s*\$|\$\s*!/.test(s) || (s.match(/!/g)?.length ?? 0) >= 3;
}

/** Money, a discount or "free" in the subject. */
export function subjectMoney(subject: string): boolean {
  return /\$\s?\d|\d\s?%|\bfree\b|\bcash\b|\bsave\b|\bincome\b|\bearn\b/i.test(subject.slice(0, 500));
}

/**
 * A run of five or more blanks inside or after the subject, in the raw field: bulk tools pad the subject (often
 * before a tracking token) so that the end of the line is out of sight; a person's mail program never does.
 */
export function subjectPadded(rawSubject: string): boolean {
  return /\S[ \t]{5,}/.test(rawSubject.slice(0, 1000));
}

/** The "ADV:" label that some laws asked advertisements to carry, after any list tag. */
export function subjectAdvertLabel(subject: string): boolean {
  return /^\s*(?:\[[^\]]{0,40}\]\s*)?adv\s*:/i.test(subject.slice(0, 200));
}

/**
 * A Message-ID in Outlook's `$`-separated form but with each field zero-padded (`<0000047b4e66$00005044$...@>`):
 * the form of a bulk tool that imitates Outlook, not of Outlook itself.
 */
export function bulkMessageId(messageId: string | undefined): boolean {
  return /^<0000[0-9a-f]{8}\$0000[0-9a-f]{4}\$0000[0-9a-f]{4}@/i.test(messageId?.trim() ?? '');
}

// Mailers that only bulk tools and scripts announce: a desktop user's mail never carries these.
const BULK_MAILERS =
  /^(?:Microsoft CDO for Windows 2000|.*Outlook Express [\d.]+ ?DM\b|.*\b(?:bulk ?mail(?:er)?|mass ?mail(?:er)?|group ?mail|send ?blaster|mailking|stealth ?mailer|dynamic ?mail|aureate ?group ?mail|quick ?sender|easy ?dm|atlas ?mailer|advanced ?mass ?sender|e-?mail ?(?:blaster|wolf|marketing)|massmailer|extractor|atomic ?mail|worldmerge|mailloop|floodgate|desktop ?server)\b)/i;

export function bulkMailer(mailer: string): boolean {
  return BULK_MAILERS.test(mailer.slice(0, 200));
}

/**
 * Outlook Express names itself in X-Mailer and always writes its Message-ID as
 * `<12 hex digits $ 8 hex $ 8 hex @ host>`: a message that claims it but has any other form came from elsewhere.
 */
export function forgedOutlookExpress(mailer: string, messageId: string | undefined): boolean {
  if (!/^Microsoft Outlook Express \d/.test(mailer)) return false;
  return !/^<[0-9a-f]{12}\$[0-9a-f]{8}\$[0-9a-f]{8}@/i.test(messageId?.trim() ?? '');
}

/**
 * Date forms that mail programs do not write (RFC 5322 3.3 asks for a zone; every MUA writes seconds and a
 * four-digit year): a hand-made header of a bulk tool.
 */
export function dateOddForm(date: string): string | undefined {
  const d = date.slice(0, 200).replace(/\([^()]*\)/g, ' ').trim();
  const m = /^(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{2,4})\s+(\d{1,2}:\d{2}(?::\d{2})?)\s*(.*)$/.exec(d);
  if (!m) return undefined;
  if (m[3].length !== 4) return 'two-digit year';
  if (m[4].length <= 5) return 'no seconds';
  if (!/^(?:[+-]\d{4}|UT|GMT|[ECMP][SD]T|Z)\b/i.test(m[5])) return m[5] ? 'bad zone' : 'no zone';
  return undefined;
}

/** Addresses in To and Cc, counted up to `max`; each @ outside quotes counts once. */
export function countRecipients(values: readonly string[], max: number): number {
  let n = 0;
  for (const v of values) {
    const s = v.slice(0, 64 * 1024).replace(/"[^"]{0,500}"/g, '');
    for (let i = s.indexOf('@'); i >= 0 && n < max; i = s.indexOf('@', i + 1)) n++;
    if (n >= max) break;
  }
  return n;
}

/**
 * A From address whose local part runs three or more digits into letters (jsmith4821@, 3847kate@): the made-up
 * accounts of bulk senders; people's own addresses rarely look so.
 */
export function fromAddressDigits(from: string): boolean {
  const m = /([A-Za-z0-9._+-]{1,64})@[A-Za-z0-9.-]{1,255}/.exec(from.slice(0, 1000));
  return m !== null && /[a-z]\d{3,}|\d{3,}[a-z]/i.test(m[1]);
}
