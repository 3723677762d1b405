// HELO/EHLO sanity: bare IP addresses, names that claim to be us, names that are not fully qualified.
import net from 'node:net';
import { defineCheck } from '../../check.ts';

export const helo = defineCheck({
  name: 'helo',
  phase: 'helo',
  symbols: {
    HELO_BARE_IP: { score: 1.5, group: 'protocol', description: 'HELO name is an IP address without the [ ] of an address literal' },
    HELO_OUR_NAME: { score: 4, group: 'protocol', description: 'HELO claims our own hostname or one of our domains' },
    HELO_NOT_FQDN: { score: 1, group: 'protocol', description: 'HELO name has no dot (not a fully qualified domain name)' },
    HELO_BAD_SYNTAX: { score: 2, group: 'protocol', description: 'HELO name is neither a domain name nor an address literal' },
    HELO_LITERAL_MISMATCH: { score: 1, group: 'protocol', description: 'HELO address literal differs from the client address' },
  },
  run({ session }, ctx) {
    const name = (session.helo ?? '').trim();
    // A trailing dot names the same host (the DNS root), so "mx.example.com." claims us as well.
    const lower = name.toLowerCase().replace(/\.$/, '');
    if (session.trusted) return;
    if (lower === session.ourHostname.toLowerCase().replace(/\.$/, '') || session.ourDomains.includes(lower)) {
      return ctx.hit('HELO_OUR_NAME', { detail: [name] });
    }
    if (net.isIP(name)) return ctx.hit('HELO_BARE_IP', { detail: [name] });
    const literal = /^\[(?:IPv6:)?([0-9a-fA-F:.]+)\]$/.exec(name);
    if (literal) {
      if (net.isIP(literal[1]) === 0) return ctx.hit('HELO_BAD_SYNTAX', { detail: [name] });
      const ip = session.ip.replace(/^::ffff:/i, '');
      if (!sameAddress(literal[1], ip)) ctx.hit('HELO_LITERAL_MISMATCH', { detail: [name, ip] });
      return;
    }
    if (!/^[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62}))*\.?$/.test(name) || name.length > 253) {
      return ctx.hit('HELO_BAD_SYNTAX', { detail: [name.slice(0, 80)] });
    }
    if (!lower.includes('.')) ctx.hit('HELO_NOT_FQDN', { detail: [name] });
  },
});

/** Compares two addresses by value: IPv6 has many spellings of one address (zeros, case, ::). */
function sameAddress(a: string, b: string): boolean {
  const family = net.isIP(a);
  if (family === 0 || family !== net.isIP(b)) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new net.BlockList();
  list.addAddress(a, type);
  return list.check(b, type);
}
