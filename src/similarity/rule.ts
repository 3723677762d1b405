// The time-zero outbreak rule: when is a cluster of similar messages an outbreak? Read by the analyzer's outbreak
// detector (which declares it) and by each gateway's in-line check (which acts on the copy that tips it, before the
// declaration reaches it). Both read the same counts, so they agree.
import type { Config } from '../config/schema.ts';
import type { ClusterStats } from './clusters.ts';

export interface RuleVerdict {
  outbreak: boolean;
  /** The figures the rule read, for the policy's evidence and the logs. */
  evidence: {
    members: number;
    recent: number;
    sources: number;
    recipients: number;
    suspicious_share: number;
    age_s: number;
  };
  /** What the rule said, in words. */
  reason: string;
}

/**
 * A cluster is an outbreak when at least min_members of it arrived within burst_min, from at least min_sources
 * client addresses, to at least min_recipients recipients, and at least min_suspicious_share of its members looked
 * suspicious to the characteristic checks. `recent` is how many members arrived within burst_min.
 */
export function outbreakRule(s: ClusterStats, recent: number, cfg: Config['outbreak'], now: number): RuleVerdict {
  const evidence = {
    members: s.members,
    recent,
    sources: s.ips,
    recipients: s.recipients,
    suspicious_share: Math.round(s.suspiciousShare * 100) / 100,
    age_s: Math.max(0, Math.round((now - s.firstSeen) / 1000)),
  };
  const outbreak =
    recent >= cfg.min_members && s.ips >= cfg.min_sources && s.recipients >= cfg.min_recipients && s.suspiciousShare >= cfg.min_suspicious_share;
  const reason = `outbreak: ${recent} similar messages in ${cfg.burst_min} min from ${s.ips} sources to ${s.recipients} recipients, ${Math.round(
    s.suspiciousShare * 100,
  )}% suspicious`;
  return { outbreak, evidence, reason };
}

/** Counts of a cluster with one more member (the message being decided), as the rule should see them. */
export function withMember(s: ClusterStats, f: { newIp: boolean; recipients: number; suspicious: boolean }, now: number): ClusterStats {
  const members = s.members + 1;
  const suspicious = s.suspicious + (f.suspicious ? 1 : 0);
  return {
    ...s,
    members,
    ips: s.ips + (f.newIp ? 1 : 0),
    recipients: s.recipients + f.recipients,
    suspicious,
    suspiciousShare: suspicious / members,
    lastSeen: Math.max(s.lastSeen, now),
  };
}
