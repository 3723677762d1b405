// The Received chain (RFC 5321 4.4): hop count, time order, and hops that cannot be what they claim.
import { isIP } from 'node:net';
import { parse } from 'tldts';

export interface Hop {
  /** The name after "from" (the client's HELO), lower case, '' when absent. */
  fromHost: string;
  /** The IP literal of the from clause, '' when none. */
  fromIp: string;
  /** The name after "by", lower case. */
  byHost: string;
  /** The time after the last ';', NaN when absent or unreadable. */
  time: number;
}

export function parseHop(value: string): Hop {
  const semi = value.lastIndexOf(';');
  const clauses = semi >= 0 ? value.slice(0, semi) : value;
  const when = semi >= 0 ? value.slice(semi + 1).replace(/\([^()]*\)/g, '').trim() : '';
  const from = /(?:^|\s)from\s+([^\s;()]+)/i.exec(clauses)?.[1] ?? '';
  const by = /(?:^|\s|\))by\s+([^\s;()]+)/i.exec(clauses)?.[1] ?? '';
  // The IP the receiving server saw is written in brackets, inside the from clause's comment.
  const fromPart = clauses.split(/\sby\s/i)[0];
  const ip = /\[(?:IPv6:)?([0-9a-fA-F:.]+)\]/.exec(fromPart)?.[1] ?? '';
  return {
    fromHost: from.toLowerCase().replace(/^\[|\]$/g, ''),
    fromIp: isIP(ip) ? ip : '',
    byHost: by.toLowerCase(),
    time: when ? Date.parse(when) : NaN,
  };
}

/** RFC 1918, link-local, CGNAT (RFC 6598), IPv6 unique-local and link-local; not loopback. */
export function isPrivateIp(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) {
    const [a, b] = ip.split('.').map(Number);
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  if (v === 6) {
    const l = ip.toLowerCase();
    return l.startsWith('fc') || l.startsWith('fd') || l.startsWith('fe80');
  }
  return false;
}

/** The registrable domain of a name under a public (ICANN) suffix; undefined for localhost, .local, .lan, IPs. */
function publicOrg(host: string): string | undefined {
  if (!host.includes('.') || isIP(host)) return undefined;
  const r = parse(host, { allowPrivateDomains: false });
  return r.isIcann && r.domain ? r.domain : undefined;
}

// Providers whose servers hand mail on only from their own public addresses.
const PROVIDERS = ['google.com', 'microsoft.com', 'outlook.com', 'amazonses.com', 'yahoo.com', 'apple.com', 'icloud.com'];

/**
 * A hop from a private address whose client named itself as a server of a large provider, received by a host of
 * another organisation: a provider's server is never reached over a private address from outside it. Narrow on
 * purpose: organisations name internal hosts under other domains of their own ("from int-mx1.corp.example
 * ([172.16.52.254]) by listman.example.net"), and list managers and fetchmail hand mail to the local MTA over
 * loopback under the name of the host it came from.
 */
export function privateForeignHop(h: Hop, providers: readonly string[]): boolean {
  if (!h.fromIp || !isPrivateIp(h.fromIp)) return false;
  const claimed = publicOrg(h.fromHost);
  const receiver = publicOrg(h.byHost);
  return claimed !== undefined && claimed !== receiver && (PROVIDERS.includes(claimed) || providers.includes(claimed));
}
