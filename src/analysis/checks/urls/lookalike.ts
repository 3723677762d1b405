// Look-alike domains: host names that a reader takes for a protected domain (the organisation's own, or a much
// phished brand), and internationalised names whose letters mix scripts.
import { domainToUnicode } from 'node:url';
import type { HostInfo } from './host.ts';

// The characters that impersonate Latin letters in real phishing (IDN homograph attacks, digit swaps), from Unicode
// TR39 confusables.txt. The full table has over 6,000 entries, most of them symbols and scripts that never reach a
// registrable IDN or do not pass for Latin at mail-client font sizes; these cover the letters of the known attacks
// (Cyrillic "аррӏе", Greek omicron, dotless i, Armenian о) at a fraction of the cost. Accents are stripped before
// the table is used (NFD, marks removed), so "pàypal" is covered without entries of its own.
const CONFUSABLE: Readonly<Record<string, string>> = {
  // Cyrillic
  а: 'a', в: 'b', с: 'c', ԁ: 'd', е: 'e', һ: 'h', і: 'i', ј: 'j', к: 'k', ӏ: 'l', м: 'm', п: 'n', о: 'o', р: 'p',
  ԛ: 'q', ѕ: 's', т: 't', у: 'y', ү: 'y', х: 'x', ԝ: 'w', ь: 'b',
  // Greek
  α: 'a', β: 'b', γ: 'y', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', ω: 'w',
  // Armenian
  օ: 'o', ս: 'u', հ: 'h', ո: 'n', ց: 'g', ք: 'p',
  // Latin letters that NFD does not decompose, and IPA letters
  ı: 'i', ȷ: 'j', ɑ: 'a', ɡ: 'g', ɩ: 'i', ɪ: 'i', ł: 'l', đ: 'd', ħ: 'h', ø: 'o', ɴ: 'n', ʟ: 'l',
  // Digits read as letters in ASCII look-alikes (paypa1, micr0soft)
  '0': 'o', '1': 'l',
};

/**
 * The "skeleton" of a label (after TR39): lower case, accents removed, confusable letters replaced, and the letter
 * pairs that render as one letter (rn → m, vv → w, cl → d) joined. Two labels with the same skeleton look alike.
 */
export function skeleton(label: string): string {
  const base = label.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
  let out = '';
  for (const ch of base) out += CONFUSABLE[ch] ?? ch;
  return out.replace(/rn/g, 'm').replace(/vv/g, 'w').replace(/cl/g, 'd');
}

/** True when a and b differ by exactly one insertion, deletion, substitution or swap of neighbours. */
export function oneEditApart(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (a.length === b.length) {
    if (a.slice(i + 1) === b.slice(i + 1)) return true;
    return a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
  }
  return a.length > b.length ? a.slice(i + 1) === b.slice(i) : a.slice(i) === b.slice(i + 1);
}

export { mixedScriptLabel } from '../../../core/scripts.ts';

export interface ProtectedDomain {
  domain: string;
  /** The registrable label ("paypal"). */
  label: string;
  skeleton: string;
  /** One of the organisation's own domains. */
  own: boolean;
}

/** Prepares protected domains (registrable domains, lower case) for comparison. */
export function protectedDomains(list: readonly { domain: string; own: boolean }[], labelOf: (d: string) => string): ProtectedDomain[] {
  const out: ProtectedDomain[] = [];
  for (const { domain, own } of list) {
    const d = domain.toLowerCase();
    const label = labelOf(d);
    if (!label || out.some((p) => p.domain === d)) continue;
    out.push({ domain: d, label, skeleton: skeleton(label), own });
  }
  return out;
}

export interface Lookalike {
  of: ProtectedDomain;
  how: 'confusable' | 'one-edit';
}

/**
 * The protected domain this host passes for, if any. The protected domain itself and the same name under another
 * suffix (amazon.de for amazon.com) are not look-alikes. `minEditLength` keeps the one-edit rule off short names,
 * where a single change gives ordinary words (dhl → dhs).
 */
export function lookalikeOf(info: HostInfo, list: readonly ProtectedDomain[], minEditLength: number): Lookalike | undefined {
  if (info.ip || !info.label) return undefined;
  if (list.some((p) => p.domain === info.domain)) return undefined;
  const label = info.punycode ? domainToUnicode(info.label) || info.label : info.label;
  const skel = skeleton(label);
  for (const p of list) {
    if (label === p.label) continue;
    if (skel === p.skeleton) return { of: p, how: 'confusable' };
  }
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(label)) return undefined;
  for (const p of list) {
    if (p.label.length >= minEditLength && oneEditApart(label, p.label)) return { of: p, how: 'one-edit' };
  }
  return undefined;
}
