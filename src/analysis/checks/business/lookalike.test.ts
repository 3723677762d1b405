// Look-alikes of correspondents' and partners' domains: the edit distance, the length rule, confusable letters, IDN
// labels, other suffixes, and the domains that are not look-alikes.
import { domainToASCII } from 'node:url';
import { describe, expect, it } from 'vitest';
import { allowedEdits, editDistance, labelOf, resemblance } from './lookalike.ts';

const known = (...d: string[]) => d.map((domain) => ({ domain, partner: false }));

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and swaps of neighbours as one edit each', () => {
    expect(editDistance('contoso', 'contoso', 2)).toBe(0);
    expect(editDistance('contoso', 'cantoso', 2)).toBe(1);
    expect(editDistance('contoso', 'conotso', 2)).toBe(1);
    expect(editDistance('contoso', 'contosso', 2)).toBe(1);
    expect(editDistance('contoso', 'cntoso', 2)).toBe(1);
    expect(editDistance('contoso', 'ocntosa', 2)).toBe(2);
    // Beyond the limit it stops early and answers limit + 1.
    expect(editDistance('contoso', 'fabrikam', 2)).toBe(3);
  });
});

describe('resemblance', () => {
  const targets = [...known('contoso-supplies.com', 'acme.com', 'northwind.com'), { domain: 'fabrikam-partner.com', partner: true }];

  it('finds typing edits by the length of the label', () => {
    expect(resemblance('contoso-suppiies.com', targets, 2, false)).toMatchObject({ of: { domain: 'contoso-supplies.com' }, how: 'edit', distance: 1 });
    expect(resemblance('cantoso-suppiies.com', targets, 2, false)).toMatchObject({ how: 'edit', distance: 2 });
    // northwind has nine letters: two edits; "nortwind" (8) one.
    expect(resemblance('nrothwnd.com', targets, 2, false)).toMatchObject({ of: { domain: 'northwind.com' }, distance: 2 });
    expect(allowedEdits(8, 2)).toBe(1);
    expect(allowedEdits(4, 2)).toBe(0);
    // A short name one letter away is another company.
    expect(resemblance('acne.com', targets, 2, false)).toBeUndefined();
    expect(resemblance('contoso-supplies.com', targets, 0, false)).toBeUndefined();
    expect(resemblance('contoso-suppiies.com', targets, 0, false)).toBeUndefined();
  });

  it('finds confusable letters and IDN homographs whatever the length', () => {
    expect(resemblance('acrne.com', targets, 2, false)).toMatchObject({ of: { domain: 'acme.com' }, how: 'confusable' });
    expect(resemblance('4cme.com', targets, 2, false)).toBeUndefined();
    const idn = domainToASCII('\u0430cme.com');
    expect(labelOf(idn)).toBe('\u0430cme');
    expect(resemblance(idn, targets, 2, false)).toMatchObject({ of: { domain: 'acme.com' }, how: 'confusable' });
    expect(resemblance('c0nt0so-supp1ies.com', targets, 2, false)).toMatchObject({ how: 'confusable' });
  });

  it('counts the same name under another suffix unless the sender is itself a correspondent', () => {
    expect(resemblance('contoso-supplies.co', targets, 2, false)).toMatchObject({ how: 'other-suffix' });
    expect(resemblance('contoso-supplies.co', targets, 2, true)).toBeUndefined();
  });

  it('prefers a partner to a correspondent', () => {
    const t = [...known('fabrikam-partners.com'), { domain: 'fabrikam-partner.com', partner: true }];
    expect(resemblance('fabrikam-partnr.com', t, 2, false)).toMatchObject({ of: { domain: 'fabrikam-partner.com', partner: true } });
  });

  it('does not take a domain for a look-alike of itself', () => {
    expect(resemblance('contoso-supplies.com', targets, 2, false)).toBeUndefined();
  });
});
