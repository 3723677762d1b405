// Address patterns used by rules and policies: "*", "*@domain", "user@domain", and CIDR for addresses.
import net from 'node:net';

export function addressMatches(pattern: string, address: string): boolean {
  const p = pattern.toLowerCase();
  const a = address.toLowerCase();
  if (p === '*') return true;
  if (p.startsWith('*@')) return a.endsWith(p.slice(1));
  if (p.startsWith('@')) return a.endsWith(p);
  if (!p.includes('@')) return a.endsWith('@' + p);
  return p === a;
}

export function cidrContains(cidr: string, ip: string): boolean {
  const plain = ip.replace(/^::ffff:/i, '');
  const [base, bitsText] = cidr.split('/');
  const family = net.isIP(base);
  if (!family) return false;
  const bits = bitsText === undefined ? (family === 4 ? 32 : 128) : Number(bitsText);
  const list = new net.BlockList();
  try {
    list.addSubnet(base, bits, family === 4 ? 'ipv4' : 'ipv6');
    return list.check(plain, net.isIP(plain) === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}
