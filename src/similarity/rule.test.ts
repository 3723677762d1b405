// The time-zero outbreak rule at the edge of each threshold, and the counts of a cluster with one more member.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.ts';
import type { ClusterStats } from './clusters.ts';
import { outbreakRule, withMember } from './rule.ts';

const CFG = configSchema.parse({}).outbreak;
const T0 = Date.UTC(2026, 10, 30, 9);

/** A cluster that meets every default threshold exactly: 3 members, 3 sources, 3 recipients, half suspicious. */
function stats(o: Partial<ClusterStats> = {}): ClusterStats {
  const s = { id: T0 * 1024, members: 4, ips: 3, senderDomains: 2, recipients: 3, firstSeen: T0, lastSeen: T0 + 60_000, suspicious: 2, outbound: 0, ...o };
  return { ...s, suspiciousShare: o.suspiciousShare ?? s.suspicious / s.members };
}

describe('outbreakRule', () => {
  it('declares a cluster that meets every threshold exactly', () => {
    const r = outbreakRule(stats(), 3, CFG, T0 + 90_000);
    expect(r.outbreak).toBe(true);
    expect(r.evidence).toEqual({ members: 4, recent: 3, sources: 3, recipients: 3, suspicious_share: 0.5, age_s: 90 });
    expect(r.reason).toBe('outbreak: 3 similar messages in 60 min from 3 sources to 3 recipients, 50% suspicious');
  });

  it('does not declare one short of any threshold', () => {
    const at = T0 + 90_000;
    expect(outbreakRule(stats(), 2, CFG, at).outbreak, 'recent').toBe(false);
    expect(outbreakRule(stats({ ips: 2 }), 3, CFG, at).outbreak, 'sources').toBe(false);
    expect(outbreakRule(stats({ recipients: 2 }), 3, CFG, at).outbreak, 'recipients').toBe(false);
    expect(outbreakRule(stats({ suspicious: 1 }), 3, CFG, at).outbreak, 'share 0.25').toBe(false);
    expect(outbreakRule(stats({ suspiciousShare: 0.4999 }), 3, CFG, at).outbreak, 'share just under').toBe(false);
  });

  it('reads members within burst_min, not the whole window', () => {
    // Many members, but only two of them recent: the velocity part fails.
    expect(outbreakRule(stats({ members: 40, suspicious: 40, ips: 20, recipients: 40 }), 2, CFG, T0).outbreak).toBe(false);
  });

  it('follows the configured thresholds', () => {
    const strict = { ...CFG, min_members: 5, min_sources: 4, min_recipients: 10, min_suspicious_share: 0.9 };
    const s = stats({ members: 5, ips: 4, recipients: 10, suspicious: 5 });
    expect(outbreakRule(s, 5, strict, T0).outbreak).toBe(true);
    expect(outbreakRule(s, 4, strict, T0).outbreak).toBe(false);
    expect(outbreakRule({ ...s, ips: 3 }, 5, strict, T0).outbreak).toBe(false);
    expect(outbreakRule({ ...s, recipients: 9 }, 5, strict, T0).outbreak).toBe(false);
    expect(outbreakRule({ ...s, suspicious: 4, suspiciousShare: 0.8 }, 5, strict, T0).outbreak).toBe(false);
    // A share of 0 lets a cluster without a suspicious member through; age never negative.
    const loose = { ...CFG, min_suspicious_share: 0 };
    const r = outbreakRule(stats({ suspicious: 0 }), 3, loose, T0 - 5_000);
    expect(r.outbreak).toBe(true);
    expect(r.evidence.age_s).toBe(0);
  });
});

describe('withMember', () => {
  it('adds one member with its address, recipients and flag', () => {
    const s = stats({ members: 2, ips: 2, recipients: 2, suspicious: 1 });
    const n = withMember(s, { newIp: true, recipients: 3, suspicious: true }, T0 + 120_000);
    expect(n).toMatchObject({ id: s.id, members: 3, ips: 3, recipients: 5, suspicious: 2, firstSeen: T0, lastSeen: T0 + 120_000, senderDomains: 2 });
    expect(n.suspiciousShare).toBeCloseTo(2 / 3);
    const same = withMember(s, { newIp: false, recipients: 1, suspicious: false }, T0);
    expect(same).toMatchObject({ members: 3, ips: 2, recipients: 3, suspicious: 1, lastSeen: T0 + 60_000 });
    expect(same.suspiciousShare).toBeCloseTo(1 / 3);
    // The input is left as it was.
    expect(s.members).toBe(2);
  });

  it('tips a cluster one short of the rule over its edge', () => {
    const short = stats({ members: 2, ips: 2, recipients: 2, suspicious: 2 });
    expect(outbreakRule(short, 2, CFG, T0).outbreak).toBe(false);
    expect(outbreakRule(withMember(short, { newIp: true, recipients: 1, suspicious: true }, T0), 3, CFG, T0).outbreak).toBe(true);
    // From an address already in the cluster it stays short of min_sources.
    expect(outbreakRule(withMember(short, { newIp: false, recipients: 1, suspicious: true }, T0), 3, CFG, T0).outbreak).toBe(false);
    // Not suspicious, the share drops to 2/3 and still holds; from a half-suspicious cluster it does not.
    const half = stats({ members: 2, ips: 2, recipients: 2, suspicious: 1 });
    expect(outbreakRule(withMember(half, { newIp: true, recipients: 1, suspicious: false }, T0), 3, CFG, T0).outbreak).toBe(false);
    expect(outbreakRule(withMember(half, { newIp: true, recipients: 1, suspicious: true }, T0), 3, CFG, T0).outbreak).toBe(true);
  });
});
