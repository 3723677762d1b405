// What the audit trail records of a POP3 command an audited user sent after login (RFC 1939 §5-§7): which message
// was read (RETR, TOP) or marked for deletion (DELE), the undoing of those marks (RSET), and QUIT, which commits them.
import type { Pop3Command } from '../pop3/parser.ts';
import type { AuditAction } from './trail.ts';

/** The audit data of a command already checked by commands.ts, or null for one the trail does not record. */
export function pop3Action(cmd: Pop3Command): AuditAction | null {
  switch (cmd.name) {
    case 'RETR':
    case 'DELE':
      return { command: cmd.name, msg: Number(cmd.args[0]) };
    case 'TOP':
      return { command: cmd.name, msg: Number(cmd.args[0]), lines: Number(cmd.args[1]) };
    case 'RSET':
    case 'QUIT':
      return { command: cmd.name };
    default:
      return null;
  }
}
