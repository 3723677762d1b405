// Live policies: the table the trend analyzer fills and admins edit; the gateway consults it at each decision point.
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import type { AppliedPolicy } from './action.ts';
import { addressMatches, cidrContains } from './match.ts';

export type PolicyTargetKind = 'ip' | 'cidr' | 'helo' | 'sender' | 'domain' | 'recipient' | 'cluster' | 'user';
export type PolicyAction = 'block' | 'defer' | 'throttle' | 'tarpit' | 'redirect' | 'quarantine' | 'allow';

export interface LivePolicy {
  id: string;
  target_kind: PolicyTargetKind;
  target: string;
  action: PolicyAction;
  params: Record<string, unknown>;
  reason: string;
  expires_at: number | null;
}

export interface PolicyFacts {
  ip?: string;
  helo?: string;
  sender?: string;
  recipient?: string;
  /** A mailbox user logging in (the monitor). */
  user?: string;
}

export class PolicyTable {
  private policies: LivePolicy[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Kysely<DB>) {}

  async load(now = Date.now()): Promise<void> {
    const rows = await this.db.selectFrom('policies').selectAll().execute();
    this.policies = rows
      .filter((r) => r.expires_at === null || r.expires_at > now)
      .map((r) => ({
        id: r.id,
        target_kind: r.target_kind as PolicyTargetKind,
        target: r.target,
        action: r.action as PolicyAction,
        params: JSON.parse(r.params) as Record<string, unknown>,
        reason: r.reason,
        expires_at: r.expires_at,
      }));
  }

  /** Reloads every intervalMs so a policy written by another process takes effect. */
  watch(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.load().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get size(): number {
    return this.policies.length;
  }

  /** Policies that match the facts known so far, unexpired. */
  match(f: PolicyFacts, now = Date.now()): LivePolicy[] {
    if (!this.policies.length) return [];
    return this.policies.filter((p) => {
      if (p.expires_at !== null && p.expires_at <= now) return false;
      switch (p.target_kind) {
        case 'ip':
          return f.ip !== undefined && f.ip.replace(/^::ffff:/i, '') === p.target;
        case 'cidr':
          return f.ip !== undefined && cidrContains(p.target, f.ip);
        case 'helo':
          return f.helo !== undefined && f.helo.toLowerCase() === p.target.toLowerCase();
        case 'sender':
          return f.sender !== undefined && addressMatches(p.target, f.sender);
        case 'domain':
          return f.sender !== undefined && addressMatches('*@' + p.target.replace(/^\*?@/, ''), f.sender);
        case 'recipient':
          // A backscatter policy holds only bounces (null sender) to the recipient.
          if (p.params.null_sender === true && f.sender !== '') return false;
          return f.recipient !== undefined && addressMatches(p.target, f.recipient);
        case 'user':
          return f.user !== undefined && f.user.toLowerCase() === p.target.toLowerCase();
        default:
          return false;
      }
    });
  }

  static applied(p: LivePolicy): AppliedPolicy {
    return { id: p.id, target_kind: p.target_kind, target: p.target, action: p.action, reason: p.reason };
  }
}
