// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2) on the monitor's listeners: a load balancer
// in monitor.proxy_protocol.trusted sends the client's address in a header before the mail protocol starts, and
// the session takes the address from it. Our own parser, because the header must be read off a raw net.Socket
// before the greeting (and before the TLS handshake of an implicit-TLS port), with the bytes after it handed back
// to the session untouched: the npm packages either wrap a whole http/net server or parse only complete buffers,
// and none is kept up to date.
import net from 'node:net';
import tls from 'node:tls';
import { cidrContains } from '../policy/match.ts';

/** The 12 octets every version 2 header starts with (proxy-protocol.txt §2.2). */
export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest version 1 line, CRLF included (§2.1: 107 octets). */
const V1_MAX = 107;
/**
 * The longest version 2 header accepted: 16 octets, the addresses and the TLVs. The format allows 64 KiB; load
 * balancers send well under 1 KiB (AWS adds its endpoint id, Azure its link id), so more is refused, not buffered.
 */
export const V2_MAX = 4096;

export interface ProxyAddress {
  address: string;
  port: number;
}

export interface ProxyHeader {
  version: 1 | 2;
  /** `local`: the balancer's own connection (a health check); the socket's address stands. */
  command: 'proxy' | 'local';
  /** tcp4, tcp6; `unknown` (v1 UNKNOWN, v2 AF_UNSPEC or AF_UNIX): the socket's address stands. */
  family: 'tcp4' | 'tcp6' | 'unknown';
  source: ProxyAddress | null;
  destination: ProxyAddress | null;
  /** Version 2 TLVs as sent (type, value); none is acted on. */
  tlvs: { type: number; value: Buffer }[];
}

export class ProxyHeaderError extends Error {}

/** Whether `b` (the first octets of a connection) is, or may still become, a PROXY header: `yes`, `no` or `more`. */
export function sniffProxyHeader(b: Buffer): 'yes' | 'no' | 'more' {
  for (const sig of [V1_PREFIX, V2_SIGNATURE]) {
    const n = Math.min(b.length, sig.length);
    if (b.subarray(0, n).equals(sig.subarray(0, n))) return n === sig.length ? 'yes' : 'more';
  }
  return 'no';
}

/**
 * One header at the start of `b`: the header and its length, or null when more octets are needed. Throws
 * ProxyHeaderError for anything else (garbage, a malformed or oversized header).
 */
export function parseProxyHeader(b: Buffer): { header: ProxyHeader; length: number } | null {
  const sniff = sniffProxyHeader(b);
  if (sniff === 'no') throw new ProxyHeaderError('the connection did not start with a PROXY protocol header');
  if (sniff === 'more') return null;
  return b[0] === 0x50 ? parseV1(b) : parseV2(b);
}

function parseV1(b: Buffer): { header: ProxyHeader; length: number } | null {
  const lf = b.indexOf(0x0a);
  if (lf < 0) {
    if (b.length >= V1_MAX) throw new ProxyHeaderError(`PROXY v1 header longer than ${V1_MAX} octets`);
    return null;
  }
  if (lf + 1 > V1_MAX) throw new ProxyHeaderError(`PROXY v1 header longer than ${V1_MAX} octets`);
  if (b[lf - 1] !== 0x0d) throw new ProxyHeaderError('PROXY v1 header not ended by CRLF');
  const line = b.subarray(0, lf - 1).toString('latin1');
  const f = line.split(' ');
  const none = { version: 1 as const, command: 'proxy' as const, destination: null, source: null, tlvs: [] };
  // §2.1: after UNKNOWN the receiver ignores everything up to the CRLF.
  if (f[1] === 'UNKNOWN') return { header: { ...none, family: 'unknown' }, length: lf + 1 };
  if ((f[1] !== 'TCP4' && f[1] !== 'TCP6') || f.length !== 6) throw new ProxyHeaderError(`PROXY v1 header is not "PROXY TCP4|TCP6 src dst sport dport" or "PROXY UNKNOWN"`);
  const family = f[1] === 'TCP4' ? 4 : 6;
  for (const a of [f[2], f[3]]) if (net.isIP(a) !== family) throw new ProxyHeaderError(`PROXY v1 address "${a.slice(0, 45)}" is not an IPv${family} address`);
  const ports = [f[4], f[5]].map((p) => {
    if (!/^(0|[1-9]\d{0,4})$/.test(p) || Number(p) > 65_535) throw new ProxyHeaderError(`PROXY v1 port "${p.slice(0, 8)}" is not a number from 0 to 65535`);
    return Number(p);
  });
  return {
    header: {
      ...none,
      family: family === 4 ? 'tcp4' : 'tcp6',
      source: { address: family === 4 ? f[2] : canonical6(f[2]), port: ports[0] },
      destination: { address: family === 4 ? f[3] : canonical6(f[3]), port: ports[1] },
    },
    length: lf + 1,
  };
}

function parseV2(b: Buffer): { header: ProxyHeader; length: number } | null {
  if (b.length < 16) return null;
  const version = b[12] >> 4;
  const cmd = b[12] & 0x0f;
  if (version !== 2) throw new ProxyHeaderError(`PROXY v2 header with version ${version}`);
  if (cmd > 1) throw new ProxyHeaderError(`PROXY v2 header with unknown command ${cmd}`);
  const len = b.readUInt16BE(14);
  const length = 16 + len;
  if (length > V2_MAX) throw new ProxyHeaderError(`PROXY v2 header of ${length} octets, more than ${V2_MAX}`);
  if (b.length < length) return null;
  const fam = b[13] >> 4;
  const transport = b[13] & 0x0f;
  const body = b.subarray(16, length);
  const header: ProxyHeader = { version: 2, command: cmd === 0 ? 'local' : 'proxy', family: 'unknown', source: null, destination: null, tlvs: [] };
  // AF_INET 12 octets, AF_INET6 36, AF_UNIX 216 (§2.2); AF_UNSPEC none.
  const size = [0, 12, 36, 216][fam];
  if (size === undefined) throw new ProxyHeaderError(`PROXY v2 header with unknown address family ${fam}`);
  if (transport > 2) throw new ProxyHeaderError(`PROXY v2 header with unknown transport ${transport}`);
  if (body.length < size) throw new ProxyHeaderError(`PROXY v2 address block of ${body.length} octets, the family needs ${size}`);
  // A DGRAM (UDP) source on a TCP listener is not a client of ours: its address is not taken.
  if (cmd === 1 && transport === 1 && (fam === 1 || fam === 2)) {
    const ip = (o: number, n: number) => (n === 4 ? [...body.subarray(o, o + 4)].join('.') : v6(body.subarray(o, o + 16)));
    const n = fam === 1 ? 4 : 16;
    header.family = fam === 1 ? 'tcp4' : 'tcp6';
    header.source = { address: ip(0, n), port: body.readUInt16BE(2 * n) };
    header.destination = { address: ip(n, n), port: body.readUInt16BE(2 * n + 2) };
  }
  for (let o = size; o < body.length; ) {
    if (o + 3 > body.length) throw new ProxyHeaderError('PROXY v2 TLV cut short');
    const type = body[o];
    const n = body.readUInt16BE(o + 1);
    if (o + 3 + n > body.length) throw new ProxyHeaderError(`PROXY v2 TLV 0x${type.toString(16)} longer than the header`);
    header.tlvs.push({ type, value: Buffer.from(body.subarray(o + 3, o + 3 + n)) });
    o += 3 + n;
  }
  return { header, length };
}

/** An IPv6 address in its usual text form (zeros compressed), as the socket's remoteAddress would be. */
function v6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return canonical6(groups.join(':'));
}

/** An IPv6 address as the platform prints a socket's (zeros compressed, ::ffff:a.b.c.d), so that policies match. */
const canonical6 = (text: string): string => new net.SocketAddress({ address: text, family: 'ipv6' }).address;

export interface ProxyProtocolOptions {
  /** CIDRs (or addresses) of the load balancers that must send a header. */
  trusted: readonly string[];
  /** How long a trusted peer may take to send its header. */
  headerTimeoutMs: number;
}

/** The client address a session takes: the header's when a trusted balancer sent one, else the socket's. */
const peers = new WeakMap<net.Socket, ProxyAddress>();

export function peerOf(socket: net.Socket): ProxyAddress {
  return peers.get(socket) ?? { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
}

const isTrusted = (trusted: readonly string[], ip: string) => trusted.some((c) => cidrContains(c, ip));

/**
 * Reads the header a trusted peer sends first; resolves with the header, its octets taken off the socket and
 * whatever came after them put back (unshift), so that the session, or the TLS handshake, reads from there.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | null, h?: ProxyHeader, rest?: Buffer) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', onEnd);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      if (err) return reject(err);
      socket.pause();
      if (rest?.length) socket.unshift(rest);
      resolve(h!);
    };
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      try {
        const r = parseProxyHeader(buf);
        if (r) done(null, r.header, buf.subarray(r.length));
      } catch (err) {
        done(err as Error);
      }
    };
    const onEnd = () => done(new ProxyHeaderError('the connection closed before its PROXY protocol header was complete'));
    const timer = setTimeout(() => done(new ProxyHeaderError(`no complete PROXY protocol header within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.once('error', onEnd);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

/**
 * Wraps a listener's accept for the PROXY protocol, for every monitor protocol alike. A socket from a trusted
 * address is held until its header is read and then passed on with the header's client address (peerOf); on an
 * implicit-TLS port, `secure` runs the handshake after the header. A socket from elsewhere is passed on at once: a
 * header from it is the session's protocol error (sniffProxyHeader). A bad or missing header closes the socket and
 * calls `refused` with what was wrong.
 */
export function proxiedAccept(
  opts: ProxyProtocolOptions,
  accept: (socket: net.Socket) => void,
  refused: (socket: net.Socket, detail: string) => void,
  secure?: tls.SecureContext,
): (socket: net.Socket) => void {
  return (socket) => {
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:/i, '');
    if (!isTrusted(opts.trusted, ip)) return secure ? untrustedTls(socket, secure, accept, refused) : accept(socket);
    readProxyHeader(socket, opts.headerTimeoutMs).then(
      (h) => {
        const client = h.command === 'proxy' && h.source ? h.source : null;
        if (secure) return handshake(socket, secure, accept, client);
        if (client) peers.set(socket, client);
        socket.resume();
        accept(socket);
      },
      (err: Error) => {
        refused(socket, err.message);
        socket.destroy();
      },
    );
  };
}

/**
 * An implicit-TLS connection from an untrusted address: its first octets are a TLS record (0x16), never `P` or CR,
 * so a PROXY header is told apart at once and refused as on the plain port, before any handshake.
 */
function untrustedTls(socket: net.Socket, secure: tls.SecureContext, accept: (socket: net.Socket) => void, refused: (socket: net.Socket, detail: string) => void): void {
  const timer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
  timer.unref();
  socket.once('data', (d: Buffer) => {
    clearTimeout(timer);
    socket.pause();
    if (sniffProxyHeader(d) !== 'no') {
      refused(socket, UNTRUSTED_HEADER);
      return void socket.destroy();
    }
    socket.unshift(d);
    handshake(socket, secure, accept, null);
  });
  socket.on('error', () => socket.destroy());
}

/** As tls.Server's handshakeTimeout: a peer that never finishes the handshake is not held for ever. */
const HANDSHAKE_TIMEOUT_MS = 120_000;

/** The protocol error of a PROXY header from an address not in monitor.proxy_protocol.trusted. */
export const UNTRUSTED_HEADER = 'a PROXY protocol header from an address not in monitor.proxy_protocol.trusted';

/** The server side of TLS on a socket whose PROXY header was read; the session starts once it is secure. */
function handshake(raw: net.Socket, context: tls.SecureContext, accept: (socket: net.Socket) => void, client: ProxyAddress | null): void {
  const t = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
  if (client) peers.set(t, client);
  const timer = setTimeout(() => t.destroy(), HANDSHAKE_TIMEOUT_MS);
  timer.unref();
  t.once('error', () => {
    clearTimeout(timer);
    t.destroy();
  });
  t.once('secure', () => {
    clearTimeout(timer);
    t.removeAllListeners('error');
    accept(t);
  });
}
