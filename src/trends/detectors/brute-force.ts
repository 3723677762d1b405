// Password attacks on mailboxes, from the login events of the monitor: many failures from one address (brute
// force), one user failing from many addresses (distributed), many users failing from one address (spraying).
// An address is blocked; a user under attack from many addresses is protected: while the policy lasts, only the
// addresses it logged in from before get in (monitor/known-logins.ts), so its owner still can and the attack, from
// addresses never seen for it, cannot. Refusals by that policy are failures too and keep it alive.
import type { Detector, DetectorContext, Finding, MatrixEvent } from '../detector.ts';
import { plainIp, str } from '../detector.ts';

export const bruteForce: Detector = {
  name: 'brute_force',
  types: ['auth.failed'],
  horizonMs: (c) => c.trends.brute_force.window_s * 1000,
  observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined {
    const cfg = ctx.config.trends.brute_force;
    const user = str(e.data.user)?.toLowerCase();
    const win = cfg.window_s * 1000;
    const w = ctx.windows;
    const found: Finding[] = [];
    const make = (target_kind: 'ip' | 'user', target: string, action: 'block' | 'protect', reason: string, evidence: Record<string, unknown>) =>
      found.push({
        detector: 'brute_force',
        policy: {
          target_kind,
          target,
          action,
          reason,
          ttl_s: cfg.ttl_s,
          source: 'analyzer:brute_force',
          evidence: { window_s: cfg.window_s, protocol: e.data.protocol, ...evidence, last_event_id: e.id },
        },
      });
    const ip = e.ip && !ctx.trusted(e.ip) ? plainIp(e.ip) : undefined;
    if (ip) {
      const failures = w.add(`bf:ip:${ip}`, win, e.ts);
      const users = user ? w.distinct(`bf:ipusers:${ip}`, user, win, e.ts) : 0;
      if (users >= cfg.ip_users) {
        make('ip', ip, 'block', `password spraying: ${users} users failed from ${ip} in ${cfg.window_s} s`, { users, sample_users: w.members(`bf:ipusers:${ip}`, 10), failures, threshold: cfg.ip_users });
      } else if (failures >= cfg.ip_failures) {
        make('ip', ip, 'block', `brute force: ${failures} failed logins from ${ip} in ${cfg.window_s} s`, { failures, sample_users: w.members(`bf:ipusers:${ip}`, 10), threshold: cfg.ip_failures });
      }
    }
    if (user && e.ip) {
      const ips = w.distinct(`bf:userips:${user}`, plainIp(e.ip), win, e.ts);
      const failures = w.add(`bf:user:${user}`, win, e.ts);
      if (ips >= cfg.user_ips) {
        make('user', user, 'protect', `distributed brute force: ${user} failed from ${ips} addresses in ${cfg.window_s} s`, {
          addresses: ips,
          failures,
          sample_addresses: w.members(`bf:userips:${user}`, 10),
          threshold: cfg.user_ips,
        });
      }
    }
    return found;
  },
};
