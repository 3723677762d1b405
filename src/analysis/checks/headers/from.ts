// The author of a message as readers see it and as DMARC evaluates it, and the ways the two come apart
// (reliability 2.1, espoofer "Composition Kills" A8-A19), plus what the display name claims.
import { createRequire } from 'node:module';
import { addressParser } from 'postal-mime';
import { getDomain } from 'tldts';
import type { MessageView } from '../../message-view.ts';

interface ParsedAddress {
  name: string;
  address?: string;
  group?: ParsedAddress[];
}

// The address parser mailauth itself runs on From (nodemailer's, resolved from mailauth's own location so that it is
// the copy mailauth loads): DMARC's author is whatever this returns, so the comparison must use the same code.
const fromMailauth = createRequire(createRequire(import.meta.url).resolve('mailauth'));
const dmarcAddressParser = fromMailauth('nodemailer/lib/addressparser') as (value: string) => ParsedAddress[];

export interface Author {
  /** The address a reader is shown (postal-mime: the first mailbox of the first From field), '' when none. */
  shown: string;
  /** Its display name, encoded words decoded. */
  name: string;
  /** Every author address DMARC would see (mailauth: every mailbox of every field it reads as From). */
  dmarc: string[];
  /** Why readers and DMARC may disagree; empty when they agree on one author. */
  ambiguous: string[];
}

function trimWsp(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++;
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--;
  return s.slice(a, b);
}

/**
 * Address-like words (local@domain) and their domains, found from each '@' outwards: linear, where a regex such as
 * /[^\s]+@(\S+)/g retries from every position of a long run without an '@'.
 */
function addressWords(text: string, stop: string): { local: string; domain: string }[] {
  const out: { local: string; domain: string }[] = [];
  for (let at = text.indexOf('@'); at >= 0 && out.length < 16; at = text.indexOf('@', at + 1)) {
    let a = at;
    while (a > 0 && !stop.includes(text[a - 1]) && !/\s/.test(text[a - 1])) a--;
    let b = at + 1;
    while (b < text.length && !stop.includes(text[b]) && !/\s/.test(text[b])) b++;
    if (a < at && b > at + 1) out.push({ local: text.slice(a, at), domain: text.slice(at + 1, b) });
  }
  return out;
}

/**
 * The From values as postal-mime reads the header block: UTF-8 lines, a continuation starts with SP or HTAB and is
 * joined as it stands, the key is all before the first colon (a line without one is all key, so "From" CRLF " : …"
 * is a From). postal-mime shows the first of them, and none when the first is empty.
 */
function postalFromValues(block: string): string[] {
  const out: string[] = [];
  let cur: string[] | undefined;
  const flush = (): void => {
    if (!cur) return;
    // The key ends at the first line's colon when it has one: other fields are passed over without joining them.
    const c1 = cur[0].indexOf(':');
    if (c1 >= 0 && trimWsp(cur[0].slice(0, c1)).toLowerCase() !== 'from') return;
    const line = cur.join('');
    const colon = line.indexOf(':');
    if (trimWsp(colon < 0 ? line : line.slice(0, colon)).toLowerCase() === 'from') out.push(colon < 0 ? '' : trimWsp(line.slice(colon + 1).replace(/[\r\n]+/g, ' ')));
  };
  for (const raw of block.split('\n')) {
    let e = raw.length;
    while (e > 0 && raw[e - 1] === '\r') e--;
    const line = raw.slice(0, e);
    if (line === '') break;
    if (cur && (line[0] === ' ' || line[0] === '\t')) cur.push(line);
    else {
      flush();
      cur = [line];
    }
  }
  flush();
  return out;
}

/** The header block as mailauth splits it: latin-1, any \s starts a continuation, the key is all before the first colon. */
function dmarcFromValues(block: string): string[] {
  const out: string[] = [];
  let cur: string[] | undefined;
  const flush = (): void => {
    if (!cur) return;
    // As above: a first line with a colon holds the whole key (none at all when the colon comes first).
    const c1 = cur[0].indexOf(':');
    if (c1 === 0 || (c1 > 0 && cur[0].slice(0, c1).trim().toLowerCase() !== 'from')) return;
    const row = cur.join('\r\n');
    const key = /^[^:]+/.exec(row)?.[0].trim().toLowerCase();
    if (key === 'from') {
      const text = Buffer.from(row, 'latin1').toString();
      const colon = text.indexOf(':');
      out.push((colon >= 0 ? text.slice(colon + 1) : text).trim());
    }
  };
  for (const line of block.split(/\r?\n/)) {
    if (cur && /^\s/.test(line)) cur.push(line);
    else {
      flush();
      cur = [line];
    }
  }
  flush();
  return out;
}

function flatten(list: ParsedAddress[]): string[] {
  const out: string[] = [];
  for (const a of list) {
    if (a.group) out.push(...flatten(a.group));
    else if (a.address) out.push(a.address);
  }
  return out;
}

/**
 * Domains of address-like text outside quoted strings, comments and encoded words that is not the mailbox itself
 * (A19 "<any@attack.example>admin@legitimate.example", "admin@legitimate.example (x) <any@attack.example>"): a phrase
 * cannot hold an unquoted '@', so some reader may take it for the address.
 */
function strayDomains(value: string): { mailbox: string; stray: string[] } {
  const bare = value
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\([^()]*\)/g, ' ')
    .replace(/=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=/g, ' ');
  const angle = /<([^<>]*)>/.exec(bare);
  const rest = angle ? bare.slice(0, angle.index) + ' ' + bare.slice(angle.index + angle[0].length) : bare;
  const found = addressWords(rest, '<>,;:@').map((w) => w.domain.toLowerCase());
  if (angle) return { mailbox: angle[1].slice(angle[1].lastIndexOf('@') + 1).toLowerCase(), stray: found };
  return { mailbox: found[0] ?? '', stray: found.slice(1) };
}

export function analyseAuthor(message: MessageView): Author {
  const ambiguous: string[] = [];
  const end = Math.min(message.headerBytes < 0 ? message.size : message.headerBytes, 256 * 1024);
  const postalFroms = postalFromValues(message.raw.toString('utf8', 0, end));
  let shown = '';
  let name = '';
  const first = postalFroms[0];
  if (first) {
    const a = addressParser(first)[0] as ParsedAddress | undefined;
    shown = a?.address ?? '';
    name = a?.name ?? '';
  }
  const block = message.raw.toString('latin1', 0, end);
  const values = dmarcFromValues(block);
  // mailauth takes only top-level mailboxes: the members of a group ("x: a@b.example;") are no author to it.
  const dmarc = values.flatMap((v) => dmarcAddressParser(v).flatMap((a) => (a.address ? [a.address] : [])));
  const groupAuthors = values.flatMap((v) => dmarcAddressParser(v).flatMap((a) => flatten(a.group ?? [])));
  if (groupAuthors.length) ambiguous.push(`an author inside a group: ${groupAuthors[0].slice(0, 60)}`);
  if (values.length > 1 || postalFroms.length > 1) ambiguous.push(`${Math.max(values.length, postalFroms.length)} From fields`);
  // A From line indented under another field: one parser folds it away, another reads it (A9, H-02).
  if (/\n[ \t]+from[ \t]*:/i.test(block)) ambiguous.push('a From line folded into another field');
  if (dmarc.length > 1) ambiguous.push(`${dmarc.length} author addresses`);
  else if (dmarc.length === 1 && shown.toLowerCase() !== dmarc[0].toLowerCase()) ambiguous.push(`shown ${shown || 'no address'}, DMARC evaluates ${dmarc[0]}`);
  else if (dmarc.length === 0 && shown) ambiguous.push(`shown ${shown}, DMARC sees no author`);
  for (const a of dmarc) if (a.split('@').length > 2 || /[,:;<>]/.test(a)) ambiguous.push(`malformed author ${a.slice(0, 80)}`);
  for (const v of values) {
    const { mailbox, stray } = strayDomains(v);
    const other = stray.find((d) => orgDomain(d) !== orgDomain(mailbox));
    if (other) ambiguous.push(`an address of ${other.slice(0, 60)} outside the mailbox`);
  }
  // Without an author in From, readers fall back to Sender or Resent-From, which DMARC never evaluates (A12, A13).
  if (!shown && dmarc.length === 0) {
    const other = [...message.headerAll('sender'), ...message.headerAll('resent-from')].find((v) => flatten(addressParser(v) as ParsedAddress[]).length > 0);
    if (other) ambiguous.push(`no author in From, but ${other.slice(0, 60)}`);
  }
  return { shown, name, dmarc, ambiguous: [...new Set(ambiguous)] };
}

export const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase().replace(/\.$/, '');

/** The registrable domain (public suffix list), or the domain itself when it has none. */
export const orgDomain = (domain: string): string => getDomain(domain, { allowPrivateDomains: false }) ?? domain;

export const inDomains = (domain: string, list: readonly string[]): boolean => list.some((d) => domain === d.toLowerCase() || domain.endsWith(`.${d.toLowerCase()}`));

// Bidi embeddings, overrides and isolates (UTS #9): they reorder what is displayed (`invoice\u202Egpj.exe`).
export const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/;
const INVISIBLE = /[\u200B\u2060\uFEFF\u00AD\u202A-\u202E\u2066-\u2069\u200E\u200F]/g;

/** A display name as compared with names and domains: NFKC (full-width @ becomes @), invisible characters dropped, lower case. */
export function normaliseName(name: string): string {
  return name.normalize('NFKC').replace(INVISIBLE, '').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Words of a name, order ignored, so that "Doe, Jane" and "Jane Doe" compare equal. */
export const nameWords = (name: string): string[] =>
  normaliseName(name)
    .split(/[\s,.;:'"()<>[\]]+/)
    .filter(Boolean);

/** Addresses written inside a display name, with their domains (I-02). */
export function addressesInName(name: string): string[] {
  const host = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+/;
  return addressWords(normaliseName(name), '<>"\'()@,;:').flatMap((w) => host.exec(w.domain)?.[0] ?? []);
}
