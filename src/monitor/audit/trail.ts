// The audit trail of one logged-in session of an audited mailbox user (monitor.audit.users): an audit.session event
// at login and at the end, and an audit.command event for each mailbox action the splice saw the client ask for.
// Whether a session is audited is decided once, at login; a session that is not has no trail at all, so the
// relay's hot path pays one null check per command and builds nothing.
import type { Emit } from '../../core/events.ts';
import { addressMatches } from '../../policy/match.ts';
import type { Protocol } from '../login-gate.ts';
import type { SessionFacts } from '../session.ts';
import type { AuditMatcher } from './users.ts';

/** The longest text kept of one field (a set, FETCH items, a mailbox name): an event cannot grow without bound. */
export const MAX_FIELD = 512;

/** What a command of the trail carries besides who and where: see audit/imap.ts and audit/pop3.ts. */
export type AuditAction = { command: string } & Record<string, unknown>;

export function clip(text: string, max = MAX_FIELD): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export class AuditTrail {
  /** Lower case, as `postern audit` looks it up. */
  readonly user: string;
  private readonly loginAt = Date.now();
  private readonly bytesIn: number;
  private readonly bytesOut: number;
  /** The session's command count at login: the end tells how many came after. */
  private readonly commandsBefore: number;
  /** The client asked to end the session (LOGOUT, QUIT): however the sockets then close, it was a logout. */
  private loggedOut = false;
  /** The mailbox the last SELECT or EXAMINE asked for, told with each command that acts in it (IMAP). */
  mailbox: string | null = null;

  /**
   * The trail of a session that just logged in, or null when its user is not audited: a fixed list of patterns, or
   * the config's and the store's (audit/users.ts).
   */
  static start(users: readonly string[] | AuditMatcher, emit: Emit, protocol: Protocol, facts: SessionFacts): AuditTrail | null {
    const user = facts.user;
    if (!user) return null;
    if ('has' in users ? !users.has(user) : !users.some((p) => addressMatches(p, user))) return null;
    return new AuditTrail(emit, protocol, facts, user);
  }

  private constructor(
    private readonly emit: Emit,
    private readonly protocol: Protocol,
    private readonly facts: SessionFacts,
    user: string,
  ) {
    this.user = user.toLowerCase();
    this.bytesIn = facts.bytesIn;
    this.bytesOut = facts.bytesOut;
    this.commandsBefore = facts.commands;
    this.session('login', { ip: facts.ip, tls: facts.tls, client: facts.client });
  }

  /** One mailbox action, as the client asked for it (before the server's answer). */
  command(action: AuditAction): void {
    if (action.command === 'LOGOUT' || action.command === 'QUIT') this.loggedOut = true;
    const { facts } = this;
    this.emit('audit.command', { ip: facts.ip, conn_id: facts.id, data: { user: this.user, session: facts.id, protocol: this.protocol, ...action } });
  }

  /** The session ended: why (`logout` when the client asked), how long after login, and what came and went since. */
  end(reason: string): void {
    const { facts } = this;
    this.session('end', {
      reason: this.loggedOut ? 'logout' : reason,
      duration_ms: Date.now() - this.loginAt,
      commands: facts.commands - this.commandsBefore,
      bytes_in: facts.bytesIn - this.bytesIn,
      bytes_out: facts.bytesOut - this.bytesOut,
    });
  }

  private session(phase: 'login' | 'end', more: Record<string, unknown>): void {
    const { facts } = this;
    this.emit('audit.session', { ip: facts.ip, conn_id: facts.id, data: { user: this.user, session: facts.id, protocol: this.protocol, phase, ...more } });
  }
}
