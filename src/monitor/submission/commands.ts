// The submission commands Postern knows (RFC 5321 §4.1, RFC 6409, RFC 4954 AUTH, RFC 3207 STARTTLS, RFC 1870
// SIZE, RFC 6152 8BITMIME), its EHLO reply, and the check of MAIL FROM and RCPT TO after login: a path Postern can
// read and only the parameters it offered, re-serialised so that only what was checked goes to the server.

/** Commands that need a login: 530 before it. */
export const NEEDS_AUTH = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT', 'VRFY', 'EXPN', 'ETRN']);

/** A domain or address literal as EHLO's argument: printable, no spaces (RFC 5321 §4.1.1.1). */
const HELO_NAME = /^[\x21-\x7e]{1,255}$/;

export function heloName(rest: string): string | null {
  const name = rest.trim();
  return HELO_NAME.test(name) ? name : null;
}

/** The EHLO reply: greeting line, then one keyword per line (RFC 5321 §4.1.1.1). */
export function ehloReply(hostname: string, keywords: readonly string[]): string {
  const lines = [`${hostname}`, ...keywords];
  return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join('');
}

/** Postern's EHLO keywords before login. */
export function preLoginKeywords(o: { tls: boolean; starttls: boolean; auth: boolean }): string[] {
  return ['SIZE', 'PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', ...(o.starttls && !o.tls ? ['STARTTLS'] : []), ...(o.auth ? ['AUTH PLAIN LOGIN'] : [])];
}

/** After login: the same, but SIZE as the server says it, and only what the server offers too. */
export function postLoginKeywords(server: readonly string[]): string[] {
  const has = (k: string) => server.find((c) => c.toUpperCase().split(' ')[0] === k);
  const size = has('SIZE');
  return [...(size ? [size] : []), ...['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'].filter((k) => has(k))];
}

/**
 * An address as Postern passes it on: `<>` or `<local@domain>` of printable ASCII without spaces, angle brackets,
 * quotes or backslashes (a quoted local part is refused rather than parsed differently from the server).
 */
const PATH = /^<([\x21-\x7e]{0,254})>$/;
const PATH_CHARS = /^[^<>"\\()\[\],;:]*@?[^<>"\\()\[\],;@]*$/;

export type Checked = { ok: true; line: string; address: string } | { ok: false; kind: 'syntax' | 'refused'; text: string };

/** RFC 1870 SIZE=n, RFC 6152 BODY=: the MAIL parameters Postern offers. */
function mailParam(p: string): string | null {
  const [key, value = ''] = p.split('=', 2);
  const k = key.toUpperCase();
  if (k === 'SIZE' && /^[0-9]{1,15}$/.test(value)) return `SIZE=${value}`;
  if (k === 'BODY' && /^(7BIT|8BITMIME)$/i.test(value)) return `BODY=${value.toUpperCase()}`;
  return null;
}

/** `MAIL FROM:<path> [params]` or `RCPT TO:<path>`, checked and rebuilt. */
export function checkPath(verb: 'MAIL' | 'RCPT', rest: string): Checked {
  const prefix = verb === 'MAIL' ? 'FROM:' : 'TO:';
  if (rest.slice(0, prefix.length).toUpperCase() !== prefix) return { ok: false, kind: 'syntax', text: `501 5.5.4 Syntax: ${verb} ${prefix}<address>` };
  const [path = '', ...params] = rest.slice(prefix.length).trimStart().split(' ').filter(Boolean);
  const m = PATH.exec(path);
  const address = m?.[1] ?? '';
  if (!m || !PATH_CHARS.test(address) || (verb === 'RCPT' && !/^[^@]+@[^@]+$/.test(address)) || (address && !address.includes('@'))) {
    return { ok: false, kind: 'syntax', text: `501 5.1.${verb === 'MAIL' ? '7' : '3'} Bad ${verb === 'MAIL' ? 'sender' : 'recipient'} address syntax` };
  }
  const kept: string[] = [];
  for (const p of params) {
    const ok = verb === 'MAIL' ? mailParam(p) : null;
    if (!ok) return { ok: false, kind: 'refused', text: `555 5.5.4 Unsupported parameter ${p.split('=')[0].slice(0, 40)}` };
    kept.push(ok);
  }
  return { ok: true, line: [`${verb} ${prefix}<${address}>`, ...kept].join(' '), address };
}
