// Logins worth a person's look that no policy should answer on its own: a login that succeeds after a run of failed
// guesses at the same account (the attacker may have found the password: likely compromise), and a user's login from
// a network never seen for that user since the analyzer started. Both are alerts (`trends.alert`), not refusals: a
// user who mistyped a few times, or travels, must still get in.
import type { Detector, DetectorContext, Finding, MatrixEvent } from '../detector.ts';
import { networkOf, plainIp, str } from '../detector.ts';

/** Networks kept per user, and users kept, so that memory stays bounded whatever the traffic. */
const MAX_NETWORKS = 32;
const MAX_USERS = 200_000;

export function loginAnomaly(): Detector {
  // user → the networks (/24, /64) it logged in from, oldest first.
  const seen = new Map<string, string[]>();
  return {
    name: 'login_anomaly',
    types: ['auth.failed', 'auth.succeeded'],
    horizonMs: (c) => c.trends.login_anomaly.window_s * 1000,
    observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined {
      const cfg = ctx.config.trends.login_anomaly;
      const user = str(e.data.user)?.trim().toLowerCase();
      if (!user || !e.ip) return;
      const ip = plainIp(e.ip);
      const win = cfg.window_s * 1000;
      const w = ctx.windows;
      if (e.type === 'auth.failed') {
        w.add(`la:fail:${user}`, win, e.ts);
        w.distinct(`la:failips:${user}`, ip, win, e.ts);
        return;
      }
      const failures = w.total(`la:fail:${user}`, win, e.ts);
      if (failures >= cfg.failures_before_success) {
        ctx.alert?.('login_anomaly', {
          kind: 'success_after_failures',
          severity: 'critical',
          summary: `${user} logged in from ${ip} after ${failures} failed logins in ${cfg.window_s} s: the password may have been guessed`,
          user,
          ip,
          evidence: { failures, window_s: cfg.window_s, failing_addresses: w.members(`la:failips:${user}`, 10), protocol: e.data.protocol },
        });
      }
      if (!cfg.new_network || ctx.trusted(ip)) return;
      const net = networkOf(ip);
      const nets = seen.get(user);
      if (!nets) {
        if (seen.size >= MAX_USERS) seen.delete(seen.keys().next().value as string);
        seen.set(user, [net]);
        return;
      }
      if (nets.includes(net)) return;
      ctx.alert?.('login_anomaly', {
        kind: 'new_network',
        severity: 'low',
        summary: `${user} logged in from ${ip}, a network not seen for this user before (known: ${nets.slice(-3).join(', ')})`,
        user,
        ip,
        evidence: { network: net, known_networks: nets.slice(-10), protocol: e.data.protocol },
      });
      nets.push(net);
      if (nets.length > MAX_NETWORKS) nets.shift();
    },
  };
}
