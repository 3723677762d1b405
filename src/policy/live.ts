// Live policies: the table the trend analyzer fills and admins edit; the gateway consults it at each decision point.
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import type { AppliedPolicy } from './action.ts';
import net from 'node:net';
import { addressMatches } from './match.ts';

export type PolicyTargetKind = 'ip' | 'cidr' | 'helo' | 'sender' | 'domain' | 'recipient' | 'cluster' | 'user';
/** protect: a mailbox user's logins only from addresses it logged in from before (the monitor; SMTP ignores it). */
export type PolicyAction = 'block' | 'defer' | 'throttle' | 'tarpit' | 'redirect' | 'quarantine' | 'allow' | 'protect';

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
  /** The similarity clusters the message belongs to (its matches' clusters, similarity/watch.ts). */
  clusters?: readonly number[];
}

/** A policy with its position in the table, so that matches come back in table order. */
interface Indexed {
  p: LivePolicy;
  at: number;
}

/**
 * The active policies, indexed by what each targets: the gateway asks at every SMTP step, and an attack can leave
 * thousands of address and network blocks, so a lookup must not walk them all.
 */
export class PolicyTable {
  private policies: LivePolicy[] = [];
  private byIp = new Map<string, Indexed[]>();
  private byHelo = new Map<string, Indexed[]>();
  private byDomain = new Map<string, Indexed[]>();
  private byUser = new Map<string, Indexed[]>();
  private byCluster = new Map<string, Indexed[]>();
  /** Networks with their parsed block list; address and recipient patterns, matched one by one (few). */
  private nets: (Indexed & { list: net.BlockList })[] = [];
  private senders: Indexed[] = [];
  private recipients: Indexed[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Kysely<DB>) {}

  async load(now = Date.now()): Promise<void> {
    const rows = await this.db
      .selectFrom('policies')
      .selectAll()
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    this.index(
      rows.map((r) => ({
        id: r.id,
        target_kind: r.target_kind as PolicyTargetKind,
        target: r.target,
        action: r.action as PolicyAction,
        params: JSON.parse(r.params) as Record<string, unknown>,
        reason: r.reason,
        expires_at: r.expires_at === null ? null : Number(r.expires_at),
      })),
    );
  }

  private index(policies: LivePolicy[]): void {
    const byIp = new Map<string, Indexed[]>();
    const byHelo = new Map<string, Indexed[]>();
    const byDomain = new Map<string, Indexed[]>();
    const byUser = new Map<string, Indexed[]>();
    const byCluster = new Map<string, Indexed[]>();
    const nets: (Indexed & { list: net.BlockList })[] = [];
    const senders: Indexed[] = [];
    const recipients: Indexed[] = [];
    const put = (m: Map<string, Indexed[]>, k: string, x: Indexed) => m.set(k, [...(m.get(k) ?? []), x]);
    policies.forEach((p, at) => {
      const x = { p, at };
      switch (p.target_kind) {
        case 'ip':
          put(byIp, plain(p.target), x);
          break;
        case 'cidr': {
          const list = blockList(p.target);
          if (list) nets.push({ ...x, list });
          break;
        }
        case 'helo':
          put(byHelo, p.target.toLowerCase(), x);
          break;
        case 'domain':
          put(byDomain, p.target.toLowerCase().replace(/^\*?@/, ''), x);
          break;
        case 'user':
          put(byUser, p.target.toLowerCase(), x);
          break;
        case 'cluster':
          put(byCluster, p.target, x);
          break;
        case 'sender':
          senders.push(x);
          break;
        case 'recipient':
          recipients.push(x);
          break;
      }
    });
    Object.assign(this, { policies, byIp, byHelo, byDomain, byUser, byCluster, nets, senders, recipients });
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

  /** Policies that match the facts known so far, unexpired, in table order. */
  match(f: PolicyFacts, now = Date.now()): LivePolicy[] {
    if (!this.policies.length) return [];
    const hits: Indexed[] = [];
    if (f.ip !== undefined) {
      const ip = plain(f.ip);
      hits.push(...(this.byIp.get(ip) ?? []));
      if (this.nets.length) {
        const family = net.isIP(ip) === 6 ? 'ipv6' : 'ipv4';
        for (const n of this.nets) if (n.list.check(ip, family)) hits.push(n);
      }
    }
    if (f.helo !== undefined) hits.push(...(this.byHelo.get(f.helo.toLowerCase()) ?? []));
    if (f.sender !== undefined) {
      const at = f.sender.lastIndexOf('@');
      if (at >= 0) hits.push(...(this.byDomain.get(f.sender.slice(at + 1).toLowerCase()) ?? []));
      for (const x of this.senders) if (addressMatches(x.p.target, f.sender)) hits.push(x);
    }
    if (f.recipient !== undefined) {
      for (const x of this.recipients) {
        // A backscatter policy holds only bounces (null sender) to the recipient.
        if (x.p.params.null_sender === true && f.sender !== '') continue;
        if (addressMatches(x.p.target, f.recipient)) hits.push(x);
      }
    }
    if (f.user !== undefined) hits.push(...(this.byUser.get(f.user.toLowerCase()) ?? []));
    if (f.clusters) for (const c of new Set(f.clusters)) hits.push(...(this.byCluster.get(String(c)) ?? []));
    if (hits.length > 1) hits.sort((a, b) => a.at - b.at);
    return hits.filter((x) => (x.p.expires_at === null || x.p.expires_at > now) && inScope(x.p, f.recipient)).map((x) => x.p);
  }

  /** The unexpired policies on a cluster (its outbreak declaration, an admin's verdict). */
  forCluster(id: number, now = Date.now()): LivePolicy[] {
    return (this.byCluster.get(String(id)) ?? []).map((x) => x.p).filter((p) => p.expires_at === null || p.expires_at > now);
  }

  /** Every unexpired cluster policy. */
  clusterPolicies(now = Date.now()): LivePolicy[] {
    return [...this.byCluster.values()].flat().map((x) => x.p).filter((p) => p.expires_at === null || p.expires_at > now);
  }

  /** Whether any cluster policy is in force: the in-line outbreak check is skipped cheaply when none is. */
  get hasClusterPolicies(): boolean {
    return this.byCluster.size > 0;
  }

  static applied(p: LivePolicy): AppliedPolicy {
    return { id: p.id, target_kind: p.target_kind, target: p.target, action: p.action, reason: p.reason };
  }
}

const plain = (ip: string): string => ip.replace(/^::ffff:/i, '');

function blockList(cidr: string): net.BlockList | undefined {
  const [base, bitsText] = cidr.split('/');
  const family = net.isIP(base);
  if (!family) return undefined;
  const list = new net.BlockList();
  try {
    list.addSubnet(base, bitsText === undefined ? (family === 4 ? 32 : 128) : Number(bitsText), family === 4 ? 'ipv4' : 'ipv6');
    return list;
  } catch {
    return undefined;
  }
}

/** A policy scoped to some recipients (params.for) applies only when the recipient is known and one of them. */
function inScope(p: LivePolicy, recipient: string | undefined): boolean {
  const scope = p.params.for;
  if (typeof scope !== 'string') return true;
  return recipient !== undefined && addressMatches(scope, recipient);
}
