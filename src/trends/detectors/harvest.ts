// Directory harvest: many unknown recipients from one address or one network, fast (within trends.harvest.window_s)
// or slow (within slow_window_s). Counts only recipients the gateway answered "no such recipient": refusals by
// policy reveal nothing and do not count.
import type { Detector, DetectorContext, Finding, MatrixEvent } from '../detector.ts';
import { networkOf, plainIp, str } from '../detector.ts';

export const harvest: Detector = {
  name: 'harvest',
  types: ['smtp.rcpt.rejected', 'smtp.rcpt.accepted'],
  horizonMs: (c) => Math.max(c.trends.harvest.window_s, c.trends.harvest.slow_window_s) * 1000,
  observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined {
    const cfg = ctx.config.trends.harvest;
    if (!e.ip || ctx.trusted(e.ip)) return;
    const ip = plainIp(e.ip);
    const w = ctx.windows;
    const fast = cfg.window_s * 1000;
    const slow = cfg.slow_window_s * 1000;
    if (e.type === 'smtp.rcpt.accepted') {
      w.add(`h:ok:${ip}`, fast, e.ts);
      w.add(`hs:ok:${ip}`, slow, e.ts);
      return;
    }
    if (e.data.reason !== 'unknown_recipient') return;
    const net = networkOf(ip);
    const rcpt = str(e.data.rcpt) ?? '';
    const unknown = w.add(`h:ip:${ip}`, fast, e.ts);
    const ok = w.total(`h:ok:${ip}`, fast, e.ts);
    const netUnknown = w.add(`h:net:${net}`, fast, e.ts);
    const netIps = w.distinct(`h:netips:${net}`, ip, fast, e.ts);
    const slowUnknown = w.add(`hs:ip:${ip}`, slow, e.ts);
    const slowOk = w.total(`hs:ok:${ip}`, slow, e.ts);
    const slowNet = w.add(`hs:net:${net}`, slow, e.ts);
    const slowNetIps = w.distinct(`hs:netips:${net}`, ip, slow, e.ts);
    w.distinct(`h:rcpts:${ip}`, rcpt, slow, e.ts);
    w.distinct(`h:rcpts:${net}`, rcpt, slow, e.ts);
    const found: Finding[] = [];
    const block = (kind: 'ip' | 'cidr', target: string, why: string, evidence: Record<string, unknown>) =>
      found.push({
        detector: 'harvest',
        policy: {
          target_kind: kind,
          target,
          action: 'block',
          reason: why,
          ttl_s: cfg.ttl_s,
          source: 'analyzer:harvest',
          evidence: { ...evidence, sample_recipients: w.members(`h:rcpts:${target === net ? net : ip}`, 10), last_event_id: e.id },
        },
      });
    if (unknown >= cfg.ip_unknown && unknown / (unknown + ok) >= cfg.ip_ratio) {
      block('ip', ip, `directory harvest: ${unknown} unknown recipients in ${cfg.window_s} s`, {
        window_s: cfg.window_s, unknown, accepted: ok, ratio: round(unknown / (unknown + ok)), threshold: cfg.ip_unknown,
      });
    } else if (slowUnknown >= cfg.slow_ip_unknown && slowUnknown / (slowUnknown + slowOk) >= cfg.ip_ratio) {
      block('ip', ip, `slow directory harvest: ${slowUnknown} unknown recipients in ${cfg.slow_window_s} s`, {
        window_s: cfg.slow_window_s, unknown: slowUnknown, accepted: slowOk, ratio: round(slowUnknown / (slowUnknown + slowOk)), threshold: cfg.slow_ip_unknown,
      });
    }
    if (netUnknown >= cfg.net_unknown && netIps >= cfg.net_min_ips) {
      block('cidr', net, `distributed directory harvest: ${netUnknown} unknown recipients from ${netIps} addresses of ${net} in ${cfg.window_s} s`, {
        window_s: cfg.window_s, unknown: netUnknown, addresses: netIps, sample_addresses: w.members(`h:netips:${net}`, 10), threshold: cfg.net_unknown,
      });
    } else if (slowNet >= cfg.slow_net_unknown && slowNetIps >= cfg.net_min_ips) {
      block('cidr', net, `slow distributed directory harvest: ${slowNet} unknown recipients from ${slowNetIps} addresses of ${net} in ${cfg.slow_window_s} s`, {
        window_s: cfg.slow_window_s, unknown: slowNet, addresses: slowNetIps, sample_addresses: w.members(`hs:netips:${net}`, 10), threshold: cfg.slow_net_unknown,
      });
    }
    return found;
  },
};

const round = (x: number) => Math.round(x * 1000) / 1000;
