// Who the From header says sent the message: a free-mail account, or a role of a sales department instead of a person.

/** The domain of the From address, lower case, '' when there is none. */
export function fromDomain(from: string): string {
  const m = /@([A-Za-z0-9.-]{1,255})/.exec(from.slice(0, 1000));
  return m ? m[1].toLowerCase().replace(/\.$/, '') : '';
}

/** Whether the From address is on one of the free-mail domains or a subdomain of one. */
export function freemail(from: string, domains: readonly string[]): boolean {
  const d = fromDomain(from);
  if (!d) return false;
  for (const f of domains) if (d === f || d.endsWith(`.${f}`)) return true;
  return false;
}

const SALES_NAME =
  /\b(?:sales|offers?|deals?|cash|money|free|credit|savings?|discounts?|lottery|prizes?|reports?|marketing|promo\w{0,10}|specials?|mortgages?|insurance|rates|loans?|debt|profits?|income|opportunit\w{0,5}|department|club)\b/i;

/** The display name of From (before the angle address) names a sales role or an offer ("Sales Department", "Visa for Bad Credit"). */
export function salesName(from: string): boolean {
  const m = /^\s*"?([^"<]{1,200})"?\s*</.exec(from.slice(0, 1000));
  return m !== null && SALES_NAME.test(m[1]);
}
