// Mail address checks that smtp-server leaves to us: RFC 5321 length limits and 8-bit without SMTPUTF8.

export type AddressProblem = 'too_long' | 'eight_bit' | 'syntax';

/** Checks an envelope address (not the null sender). */
export function addressProblem(address: string, smtputf8: boolean): AddressProblem | undefined {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at + 1);
  // RFC 5321 4.5.3.1.1-3: local-part 64, domain 255, path 256 octets (with the angle brackets).
  if (Buffer.byteLength(local) > 64 || Buffer.byteLength(domain) > 255 || Buffer.byteLength(address) + 2 > 256) {
    return 'too_long';
  }
  // RFC 6531: non-ASCII only with SMTPUTF8; U+FFFD is what an undecodable 8-bit byte became.
  // eslint-disable-next-line no-control-regex
  if (!smtputf8 && /[^\x00-\x7f]/.test(address)) return 'eight_bit';
  if (address.includes('\ufffd')) return 'eight_bit';
  if (at <= 0 || at === address.length - 1) return 'syntax';
  return undefined;
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** Lower-cases the domain; local parts are case-sensitive in principle but compared case-insensitively here. */
export function normalizeAddress(address: string): string {
  return address.toLowerCase();
}
