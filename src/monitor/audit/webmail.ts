// What the audit trail records of a webmail user's actions, as the webmail reports them (monitor/collector/): the
// message sent (recipients, Message-ID, size), the message read (folder, UID, Message-ID), and the logout.
import type { WebmailEvent } from '../collector/payload.ts';
import { clip, type AuditAction } from './trail.ts';

/** The most recipients kept of one sent message in the trail. */
const MAX_TO = 100;

/** The audit data of a logout, send or read; null for the logins, which are audit.session events. */
export function webmailAction(e: WebmailEvent): AuditAction | null {
  switch (e.type) {
    case 'logout':
      return { command: 'LOGOUT' };
    case 'send':
      return {
        command: 'SEND',
        to: e.to.slice(0, MAX_TO).map((a) => clip(a, 320)),
        ...(e.to.length > MAX_TO ? { recipients: e.to.length } : {}),
        ...(e.message_id !== undefined ? { message_id: clip(e.message_id) } : {}),
        ...(e.size !== undefined ? { size: e.size } : {}),
      };
    case 'read':
      return {
        command: 'READ',
        ...(e.folder !== undefined ? { mailbox: clip(e.folder) } : {}),
        ...(e.uid !== undefined ? { uid: e.uid } : {}),
        ...(e.message_id !== undefined ? { message_id: clip(e.message_id) } : {}),
      };
    default:
      return null;
  }
}
