// IMAP values Postern writes itself: strings re-serialised for the server (never the client's raw bytes, IM-12),
// the capability lists it shows clients, and the parts of ID it keeps.
import type { ImapArg } from './parser.ts';

/**
 * A string as the server must read it: quoted when every byte may stand in a quoted string (RFC 9051 §9
 * TEXT-CHAR minus nothing that needs more than a backslash), else a literal. A CR, LF, NUL or 8-bit byte in a user
 * name therefore can never end the command early or start another (imapengine CVE-2026-2469).
 */
export function astring(value: Buffer, literalPlus: boolean): { text: Buffer; sync: boolean } {
  let quotable = value.length <= 1024;
  for (let i = 0; quotable && i < value.length; i++) {
    const c = value[i];
    if (c === 0 || c === 0x0a || c === 0x0d || c >= 0x80) quotable = false;
  }
  if (quotable) return { text: Buffer.from(`"${value.toString('latin1').replace(/[\\"]/g, '\\$&')}"`, 'latin1'), sync: false };
  const head = Buffer.from(`{${value.length}${literalPlus ? '+' : ''}}\r\n`);
  return { text: Buffer.concat([head, value]), sync: !literalPlus };
}

/** The value of a string argument (atom, quoted or literal); undefined for a list or NIL where a string is needed. */
export function stringArg(a: ImapArg | undefined): Buffer | undefined {
  if (!a) return undefined;
  if (a.type === 'quoted' || a.type === 'literal') return a.value;
  if (a.type === 'atom') return Buffer.from(a.value, 'latin1');
  return undefined;
}

/**
 * The server's capabilities as a client of the proxy may use them (IM-15). Withheld: COMPRESS (the monitor would
 * see only deflated bytes), STARTTLS and the login-time ones (Postern did the login), and LITERAL+ (Postern frames
 * non-synchronising literals only up to the RFC 7888 LITERAL- limit, so it offers that).
 */
export function clientCapabilities(server: readonly string[], maxNonSync: number): string[] {
  const out: string[] = [];
  for (const c of server) {
    const u = c.toUpperCase();
    if (u.startsWith('COMPRESS=') || u.startsWith('AUTH=') || u === 'STARTTLS' || u === 'LOGINDISABLED' || u === 'SASL-IR' || u === 'LOGIN-REFERRALS') continue;
    if (u === 'LITERAL+' || u === 'LITERAL-') continue;
    out.push(c);
  }
  if (maxNonSync >= 4096) out.splice(1, 0, 'LITERAL-');
  return out;
}

/** Postern's own capabilities before login. */
export function preLoginCapabilities(secure: boolean, maxNonSync: number): string {
  return ['IMAP4rev1', ...(maxNonSync >= 4096 ? ['LITERAL-'] : []), 'SASL-IR', 'ID', 'IDLE', ...(secure ? [] : ['STARTTLS']), 'AUTH=PLAIN', 'AUTH=LOGIN'].join(' ');
}

/** Capabilities named in a response: `* CAPABILITY a b` or a `[CAPABILITY a b]` code. */
export function capabilitiesIn(line: string): string[] | undefined {
  const m = /^\* CAPABILITY (.*)$/i.exec(line) ?? /\[CAPABILITY ([^\]]*)\]/i.exec(line);
  return m ? m[1].trim().split(/\s+/) : undefined;
}

/** RFC 2971 §3.3 limits: 30 pairs, field names up to 30 octets, values up to 1024. */
const ID_PAIRS = 30;

/**
 * The client's ID parameters that may travel on: client-supplied `x-*` fields are dropped, since a server that
 * trusts the proxy would believe a forged x-originating-ip (IM-11); only Postern sets those.
 */
export function clientId(args: readonly ImapArg[]): { fields: [string, string][] } | { error: string } {
  if (args.length !== 1) return { error: 'ID needs one argument: a list or NIL' };
  const a = args[0];
  if (a.type === 'atom' && a.value.toUpperCase() === 'NIL') return { fields: [] };
  if (a.type !== 'list' || a.items.length % 2 !== 0) return { error: 'ID needs a list of field-value pairs' };
  const fields: [string, string][] = [];
  for (let i = 0; i < a.items.length; i += 2) {
    const k = stringArg(a.items[i]);
    const vArg = a.items[i + 1];
    const v = vArg.type === 'atom' && vArg.value.toUpperCase() === 'NIL' ? Buffer.alloc(0) : stringArg(vArg);
    if (!k || !v || k.length > 30 || v.length > 1024) return { error: 'ID fields are strings of at most 30 octets, values at most 1024' };
    const key = k.toString('utf8');
    if (/^x-/i.test(key)) continue;
    if (fields.length < ID_PAIRS) fields.push([key, v.toString('utf8')]);
  }
  return { fields };
}

/** An ID list as the server reads it. */
export function idList(fields: readonly [string, string][]): string {
  if (!fields.length) return 'NIL';
  const q = (s: string) => `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, '\\$&')}"`;
  return `(${fields.map(([k, v]) => `${q(k)} ${q(v)}`).join(' ')})`;
}
