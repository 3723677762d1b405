// What the audit trail records of an IMAP command an audited user sent after login (RFC 9051 §6.3-6.4, RFC 6851
// MOVE, RFC 4315 UID EXPUNGE): the mailbox, the sequence or UID set, the FETCH items, the STORE flags, the COPY or
// MOVE target, the APPEND size. Read from the arguments the parser already framed; nothing is parsed twice.
import type { ImapArg, ImapCommand } from '../imap/parser.ts';
import { clip, MAX_FIELD, type AuditAction, type AuditTrail } from './trail.ts';

/** The most flags kept of one STORE or APPEND. */
const MAX_FLAGS = 32;

/** An argument as the client wrote it (a literal, whose bytes went on to the server unread, as `{size}`). */
function text(a: ImapArg | undefined): string {
  if (!a) return '';
  switch (a.type) {
    case 'atom':
      return a.value;
    case 'quoted':
      return JSON.stringify(a.value.toString('utf8'));
    case 'literal':
      return `{${a.size}}`;
    case 'list':
      return `(${join(a.items)})`;
  }
}

/** Arguments joined as written: `BODY[HEADER.FIELDS (FROM)]` tokenises as an atom, a list and `]`. */
function join(args: readonly ImapArg[]): string {
  let out = '';
  for (const a of args) {
    const t = text(a);
    out += out && !out.endsWith('[') && !t.startsWith(']') ? ` ${t}` : t;
    if (out.length > MAX_FIELD) break;
  }
  return out;
}

/** A mailbox name: the string itself, not its quoting. */
function mailbox(a: ImapArg | undefined): string {
  if (a?.type === 'quoted') return clip(a.value.toString('utf8'));
  return clip(text(a));
}

function flags(a: ImapArg | undefined): string[] {
  const items = a?.type === 'list' ? a.items : a ? [a] : [];
  return items.slice(0, MAX_FLAGS).map((f) => clip(text(f), 64));
}

/** The audit data of one command, or null for a command the trail does not record (NOOP, LIST, SEARCH, IDLE…). */
export function imapAction(cmd: ImapCommand, trail: AuditTrail): AuditAction | null {
  const { name, args } = cmd;
  const uid = name.startsWith('UID ');
  const verb = uid ? name.slice(4) : name;
  const inMailbox = { mailbox: trail.mailbox };
  switch (verb) {
    case 'SELECT':
    case 'EXAMINE':
      if (uid) return null;
      trail.mailbox = mailbox(args[0]);
      return { command: name, mailbox: trail.mailbox };
    case 'CLOSE':
    case 'UNSELECT': {
      if (uid) return null;
      const was = trail.mailbox;
      trail.mailbox = null;
      return { command: name, mailbox: was };
    }
    case 'FETCH':
      return { command: name, ...inMailbox, set: clip(text(args[0])), items: clip(join(args.slice(1))) };
    case 'STORE': {
      // RFC 7162 puts an optional (UNCHANGEDSINCE n) between the set and the item.
      const rest = args[1]?.type === 'list' ? args.slice(2) : args.slice(1);
      return { command: name, ...inMailbox, set: clip(text(args[0])), items: clip(text(rest[0]), 64), flags: flags(rest.length > 2 ? { type: 'list', items: rest.slice(1) } : rest[1]) };
    }
    case 'COPY':
    case 'MOVE':
      return { command: name, ...inMailbox, set: clip(text(args[0])), target: mailbox(args[1]) };
    case 'EXPUNGE':
      return uid ? { command: name, ...inMailbox, set: clip(text(args[0])) } : { command: name, ...inMailbox };
    case 'APPEND':
      return uid ? null : append(args);
    case 'CREATE':
    case 'DELETE':
      return uid ? null : { command: name, mailbox: mailbox(args[0]) };
    case 'RENAME':
      return uid ? null : { command: name, mailbox: mailbox(args[0]), target: mailbox(args[1]) };
    case 'LOGOUT':
      return uid ? null : { command: name };
    default:
      return null;
  }
}

/** APPEND mailbox [flags] [date] literal, repeated for MULTIAPPEND (RFC 3502): the sizes summed. */
function append(args: readonly ImapArg[]): AuditAction {
  let size = 0;
  let messages = 0;
  let flagList: string[] = [];
  for (const a of args.slice(1)) {
    if (a.type === 'literal') {
      size += a.size;
      messages++;
    } else if (a.type === 'list' && !messages) flagList = flags(a);
  }
  return { command: 'APPEND', mailbox: mailbox(args[0]), size, ...(messages > 1 ? { messages } : {}), ...(flagList.length ? { flags: flagList } : {}) };
}
