// Which of the From domain's authentications passed, read from the auth check's symbols (the business check runs
// after it): the RFC 8601 result strings in their details name the domains that SPF and DKIM vouched for. Relaxed
// alignment (RFC 7489 3.1): the same registrable domain as From.
import type { SymbolHit } from '../../check.ts';
import { orgDomain as registrable } from '../headers/from.ts';

export interface Authenticated {
  /** DMARC passed, or SPF or DKIM passed for a domain aligned with From. */
  any: boolean;
  spfAligned: boolean;
  dkimAligned: boolean;
  /** What counted, for the symbol's detail. */
  how: string[];
}

const domainOfValue = (v: string) => v.slice(v.lastIndexOf('@') + 1).toLowerCase();

export function authenticated(fromRegistrable: string, saw: (symbol: string) => SymbolHit | undefined): Authenticated {
  const how: string[] = [];
  const dmarc = saw('DMARC_PASS');
  const spf = saw('SPF_PASS');
  const dkim = saw('DKIM_VALID');
  const spfDomain = /\bsmtp\.mailfrom=(\S+)/.exec(spf?.detail?.[0] ?? '')?.[1];
  const spfAligned = spfDomain !== undefined && registrable(domainOfValue(spfDomain)) === fromRegistrable;
  if (spfAligned) how.push('spf');
  const dkimAligned = (dkim?.detail ?? []).some((d) => {
    const signer = /\bheader\.[di]=(\S+)/.exec(d)?.[1];
    return signer !== undefined && registrable(domainOfValue(signer)) === fromRegistrable;
  });
  if (dkimAligned) how.push('dkim');
  const dmarcFrom = /\bheader\.from=(\S+)/.exec(dmarc?.detail?.[0] ?? '')?.[1];
  const dmarcPass = dmarc !== undefined && (dmarcFrom === undefined || registrable(dmarcFrom.toLowerCase()) === fromRegistrable);
  if (dmarcPass) how.push('dmarc');
  return { any: dmarcPass || spfAligned || dkimAligned, spfAligned, dkimAligned, how };
}
