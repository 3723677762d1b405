// One URL taken apart the way a browser would read it: scheme, user info, host (IP literal in any encoding,
// punycode), port, and the registrable domain of the host (tldts, public suffix list).
import { domainToASCII, domainToUnicode } from 'node:url';
import { parse as parseDomain } from 'tldts';

export type IpKind = 'v4' | 'v6' | 'v4-encoded';

export interface HostInfo {
  /** Lower-case ASCII host (A-labels), without brackets or trailing dot; '' when there is none. */
  host: string;
  /** The host with A-labels shown as Unicode, as a mail client would display it. */
  hostUnicode: string;
  /** Registrable domain (public suffix + 1 label, private suffixes included); the host itself for IPs. */
  domain: string;
  /** The registrable domain without its public suffix ("paypal" for www.paypal.co.uk); '' for IPs. */
  label: string;
  ip?: IpKind;
  /** An IP literal in a private, loopback or link-local range (common in technical mail, not a lure). */
  privateIp: boolean;
  /** A label of the host is an A-label (xn--). */
  punycode: boolean;
  /** The host had %-escapes, which browsers decode before resolving. */
  escaped: boolean;
}

export interface ParsedUrl extends HostInfo {
  /** Lower-case scheme without the colon; 'http' for a protocol-relative //host URL. */
  scheme: string;
  /** Explicit port other than the scheme's default. */
  port?: number;
  /** The user info before "@" in the authority, when there is one. */
  userinfo?: string;
}

// Schemes whose URLs have an authority that browsers parse leniently (WHATWG "special" schemes).
const SPECIAL = new Set(['http', 'https', 'ftp', 'ws', 'wss']);
const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443, ftp: 21, ws: 80, wss: 443 };

const DOTTED_V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// WHATWG URL IPv4 parser: a host whose last label is a number is an IPv4 address, and each part may be decimal,
// octal (leading 0) or hex (0x); 1 to 4 parts. http://3232235777/ and http://0xC0.0xA8.1.1/ both open 192.168.1.1.
const NUMERIC_PART = /^(?:0x[0-9a-f]*|\d+)$/;

function privateV4(a: number, b: number): boolean {
  if (a === 10 || a === 127 || a === 0) return true;
  if (a === 172) return b >= 16 && b <= 31;
  if (a === 192) return b === 168;
  if (a === 169) return b === 254;
  return a === 100 && b >= 64 && b <= 127; // carrier-grade NAT
}

function privateV6(h: string): boolean {
  return h === '::1' || h === '::' || /^f[cd]/.test(h) || /^fe[89ab]/.test(h);
}

/**
 * The string without leading characters for which `drop` holds and trailing ones for which `dropEnd` does.
 * A loop, not a regex: /[…]+$/ backtracks
 * over every run of such characters inside the string, which is quadratic on hostile input.
 */
export function trimWith(s: string, drop: (code: number) => boolean, dropEnd = drop): string {
  let a = 0;
  let b = s.length;
  while (a < b && drop(s.charCodeAt(a))) a++;
  while (b > a && dropEnd(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Classifies a host (already lower-case, brackets removed). Pure: callers cache it per message. */
export function hostInfo(rawHost: string, bracketed = false): HostInfo {
  let host = rawHost.toLowerCase();
  let escaped = false;
  if (host.includes('%')) {
    escaped = true;
    try {
      host = decodeURIComponent(host).toLowerCase();
    } catch {
      // Leave it: a browser refuses such a host, and the symbols below still see its text.
    }
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  const base = { host, hostUnicode: host, domain: host, label: '', privateIp: false, punycode: false, escaped };
  if (bracketed) return { ...base, ip: 'v6', privateIp: privateV6(host) };
  const dotted = DOTTED_V4.exec(host);
  if (dotted) {
    const [a, b] = host.split('.').map(Number);
    return { ...base, ip: 'v4', privateIp: privateV4(a, b) };
  }
  const parts = host.split('.');
  if (parts.length <= 4 && parts.every((p) => NUMERIC_PART.test(p))) return { ...base, ip: 'v4-encoded' };
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(host)) {
    const ascii = domainToASCII(host);
    if (ascii) host = ascii;
  }
  const punycode = host.startsWith('xn--') || host.includes('.xn--');
  const hostUnicode = punycode ? domainToUnicode(host) || host : host;
  const d = parseDomain(host, { extractHostname: false, allowPrivateDomains: true, detectIp: false, validateHostname: false });
  return {
    host,
    hostUnicode,
    domain: d.domain ?? host,
    label: d.domainWithoutSuffix ?? '',
    privateIp: false,
    punycode,
    escaped,
  };
}

/**
 * Parses an absolute URL (or a protocol-relative //host one). Returns undefined for a relative reference.
 * Browsers drop tabs and line breaks anywhere in a URL and read "\" as "/" in special schemes; so does this.
 * `hosts` caches host classification for the message.
 */
export function parseUrl(input: string, hosts?: Map<string, HostInfo>): ParsedUrl | undefined {
  const s = trimWith(input.replace(/[\t\r\n]/g, ''), (c) => c <= 0x20);
  let scheme: string;
  let rest: string;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]{0,31}):/.exec(s);
  if (m) {
    scheme = m[1].toLowerCase();
    rest = s.slice(m[0].length);
  } else if (s.startsWith('//') || s.startsWith('\\\\')) {
    scheme = 'http';
    rest = s;
  } else return undefined;
  if (!SPECIAL.has(scheme)) {
    return { scheme, host: '', hostUnicode: '', domain: '', label: '', privateIp: false, punycode: false, escaped: false };
  }
  const start = /^[/\\]*/.exec(rest)![0].length;
  let end = rest.slice(start).search(/[/\\?#]/);
  end = end < 0 ? rest.length : start + end;
  let authority = rest.slice(start, end);
  let userinfo: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
  }
  let rawHost = authority;
  let portText = '';
  let bracketed = false;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    rawHost = authority.slice(1, close < 0 ? undefined : close);
    bracketed = true;
    if (close >= 0 && authority[close + 1] === ':') portText = authority.slice(close + 2);
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon >= 0) {
      rawHost = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    }
  }
  const key = bracketed ? `[${rawHost}]` : rawHost;
  let info = hosts?.get(key);
  if (!info) {
    info = hostInfo(rawHost, bracketed);
    hosts?.set(key, info);
  }
  const url: ParsedUrl = { ...info, scheme };
  if (userinfo !== undefined) url.userinfo = userinfo;
  if (/^\d{1,5}$/.test(portText)) {
    const port = Number(portText);
    if (port !== DEFAULT_PORT[scheme]) url.port = port;
  }
  return url;
}
