// What the audit trail records of a submission an audited user made after login (RFC 5321 §3.3, RFC 6409): the
// MAIL FROM and each RCPT TO address, the message's size and Message-ID, and the server's reply to each, recorded
// when the reply comes, so that the trail tells what the server took and what it refused.
import type { DataScanner } from '../submission/data.ts';
import type { Reply } from '../submission/replies.ts';
import { clip, type AuditAction } from './trail.ts';

const reply = (r: Reply) => ({ code: r.code, reply: clip(`${r.code} ${r.text}`, 200) });

export function mailAction(from: string, r: Reply): AuditAction {
  return { command: 'MAIL FROM', from: clip(from, 256), ...reply(r) };
}

export function rcptAction(to: string, r: Reply): AuditAction {
  return { command: 'RCPT TO', to: clip(to, 256), ...reply(r) };
}

/** A message and the server's final reply; without a scan, the server refused DATA itself. */
export function dataAction(scan: DataScanner | null, r: Reply): AuditAction {
  if (!scan) return { command: 'DATA', ...reply(r) };
  const id = scan.messageId();
  return { command: 'DATA', size: scan.size, ...(id ? { message_id: clip(id, 256) } : {}), ...reply(r) };
}

export function simpleAction(command: 'RSET', r: Reply): AuditAction {
  return { command, ...reply(r) };
}
