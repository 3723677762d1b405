// The POP3 commands Postern knows, per state (RFC 1939 §4-§7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH), and
// the check of a TRANSACTION command before it goes to the server: a known name, the right number of numeric
// arguments, re-serialised so that only what was checked is sent.
import type { Pop3Command } from './parser.ts';

/** The AUTHORIZATION state: Postern answers all of these itself. */
export const AUTHORIZATION = new Set(['CAPA', 'USER', 'PASS', 'AUTH', 'APOP', 'STLS', 'QUIT']);

/** TRANSACTION commands: [least, most] arguments, all message numbers. */
const TRANSACTION: Record<string, [number, number]> = {
  STAT: [0, 0],
  LIST: [0, 1],
  RETR: [1, 1],
  DELE: [1, 1],
  NOOP: [0, 0],
  RSET: [0, 0],
  TOP: [2, 2],
  UIDL: [0, 1],
  QUIT: [0, 0],
};

/** A message number or TOP's line count: digits only, and few enough to be a number Dovecot reads. */
const NUMBER = /^[0-9]{1,10}$/;

export type Checked =
  | { ok: true; line: string; multiline: boolean }
  | { ok: false; kind: 'unknown_command' | 'needs_login' | 'refused' | 'syntax'; text: string };

/** Whether a command may go to the server after login, and how its answer ends. */
export function checkTransaction(cmd: Pop3Command): Checked {
  const arity = TRANSACTION[cmd.name];
  if (!arity) {
    if (AUTHORIZATION.has(cmd.name)) return { ok: false, kind: 'refused', text: 'Already logged in.' };
    return { ok: false, kind: 'unknown_command', text: 'Unknown command.' };
  }
  const [least, most] = arity;
  if (cmd.args.length < least || cmd.args.length > most || !cmd.args.every((a) => NUMBER.test(a))) {
    return { ok: false, kind: 'syntax', text: `${cmd.name} takes ${least === most ? least : `${least} to ${most}`} numeric argument${most === 1 ? '' : 's'}.` };
  }
  // RETR and TOP, and LIST and UIDL of the whole maildrop, answer +OK with a dot-terminated body (RFC 1939 §3).
  const multiline = cmd.name === 'RETR' || cmd.name === 'TOP' || ((cmd.name === 'LIST' || cmd.name === 'UIDL') && cmd.args.length === 0);
  return { ok: true, line: [cmd.name, ...cmd.args].join(' '), multiline };
}

/** Whether a command name belongs to the TRANSACTION state (so before login it needs login rather than being unknown). */
export function isTransaction(name: string): boolean {
  return name in TRANSACTION;
}

/**
 * The server's capabilities as a client of the proxy may use them: the login ones (STLS, SASL, USER, APOP) are
 * Postern's business, and XCLIENT is never a client's. CAPA after login is answered from this list.
 */
export function clientCapabilities(server: readonly string[]): string[] {
  return server.filter((c) => !/^(STLS|SASL|USER|APOP|XCLIENT|AUTH-RESP-CODE)\b/i.test(c));
}

/** Postern's own capabilities before login (RFC 2449 §6). No APOP: its digest is bound to the server's banner (PO-05). */
export function preLoginCapabilities(secure: boolean): string[] {
  return ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN', ...(secure ? [] : ['STLS'])];
}

/** A multi-line +OK answer with dot-stuffing (RFC 1939 §3). */
export function multiline(head: string, lines: readonly string[]): string {
  return `+OK ${head}\r\n${lines.map((l) => (l.startsWith('.') ? `.${l}` : l) + '\r\n').join('')}.\r\n`;
}
