// Is a sender domain made to pass for one the organisation does business with? Compared on the registrable label
// (tldts): the same letters after confusable folding (the urls check's TR39 skeleton: Cyrillic and Greek look-alike
// letters, 0→o, 1→l, rn→m, vv→w), or a few typing edits away (Damerau-Levenshtein).
import { domainToUnicode } from 'node:url';
import { getDomainWithoutSuffix } from 'tldts';
import { skeleton } from '../urls/lookalike.ts';

export interface Target {
  /** Registrable domain. */
  domain: string;
  partner: boolean;
}

export interface Resemblance {
  of: Target;
  how: 'confusable' | 'edit' | 'other-suffix';
  distance: number;
}

/** The registrable label (contoso-supplies of mail.contoso-supplies.co.uk), in Unicode for an IDN. */
export function labelOf(registrable: string): string {
  const label = getDomainWithoutSuffix(registrable, { allowPrivateDomains: false }) ?? registrable.split('.')[0] ?? '';
  return label.startsWith('xn--') ? domainToUnicode(label) || label : label;
}

/**
 * Damerau-Levenshtein distance in its optimal-string-alignment form (insert, delete, substitute, swap two
 * neighbours), stopping early once every path costs more than `max`. A dozen lines, so written here; the npm
 * packages for it are larger than the function.
 */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2] + 1);
      cur.push(v);
      best = Math.min(best, v);
    }
    if (best > max) return max + 1;
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Edits a label of this length may be away from a target and still count as a look-alike. Short names are left to
 * the confusable rule: one edit turns many short names into other real ones (acme → acne, dhl → dhs).
 */
export function allowedEdits(length: number, max: number): number {
  if (length < 5) return 0;
  if (length < 9) return Math.min(1, max);
  return max;
}

/**
 * The target `domain` passes for, if any. `domain` itself is not compared with; the same label under another
 * suffix (contoso.de for contoso.com) counts unless `sameLabelOk` (the sender's domain is a settled correspondent).
 */
export function resemblance(domain: string, targets: Iterable<Target>, maxEdits: number, sameLabelOk: boolean): Resemblance | undefined {
  const label = labelOf(domain);
  if (!label) return undefined;
  const skel = skeleton(label);
  let found: Resemblance | undefined;
  for (const t of targets) {
    if (t.domain === domain) continue;
    const tLabel = labelOf(t.domain);
    if (!tLabel) continue;
    let r: Resemblance | undefined;
    if (tLabel === label) r = sameLabelOk ? undefined : { of: t, how: 'other-suffix', distance: 0 };
    else {
      const tSkel = skeleton(tLabel);
      if (tSkel === skel) r = { of: t, how: 'confusable', distance: 0 };
      else {
        const allowed = allowedEdits(tSkel.length, maxEdits);
        const d = allowed ? editDistance(skel, tSkel, allowed) : Infinity;
        if (d <= allowed) r = { of: t, how: 'edit', distance: d };
      }
    }
    // A partner outranks a learned correspondent, a closer match a farther one.
    if (r && (!found || (r.of.partner && !found.of.partner) || (r.of.partner === found.of.partner && r.distance < found.distance))) found = r;
  }
  return found;
}
