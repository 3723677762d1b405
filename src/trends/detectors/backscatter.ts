// Backscatter storm: a flood of bounces (null sender) to one recipient, the sign that someone forges our users as
// the sender of spam. Bounces to that recipient are then held in quarantine, where the real ones can be released.
import type { Detector, DetectorContext, Finding, MatrixEvent } from '../detector.ts';
import { str } from '../detector.ts';

export const backscatter: Detector = {
  name: 'backscatter',
  types: ['message.accepted', 'smtp.data.rejected'],
  horizonMs: (c) => c.trends.backscatter.window_s * 1000,
  observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined {
    const cfg = ctx.config.trends.backscatter;
    if (e.data.from !== '') return;
    const rcpts = Array.isArray(e.data.recipients)
      ? (e.data.recipients as { rcpt?: string }[]).map((r) => str(r.rcpt))
      : Array.isArray(e.data.rcpts)
        ? (e.data.rcpts as unknown[]).map(str)
        : [];
    const found: Finding[] = [];
    for (const rcpt of rcpts) {
      if (!rcpt) continue;
      const n = ctx.windows.add(`b:${rcpt}`, cfg.window_s * 1000, e.ts);
      if (e.ip) ctx.windows.distinct(`b:ips:${rcpt}`, e.ip, cfg.window_s * 1000, e.ts);
      if (n < cfg.bounces) continue;
      found.push({
        detector: 'backscatter',
        policy: {
          target_kind: 'recipient',
          target: rcpt,
          action: 'quarantine',
          params: { null_sender: true },
          reason: `backscatter storm: ${n} bounces to ${rcpt} in ${cfg.window_s} s`,
          ttl_s: cfg.ttl_s,
          source: 'analyzer:backscatter',
          evidence: { window_s: cfg.window_s, bounces: n, sample_addresses: ctx.windows.members(`b:ips:${rcpt}`, 10), threshold: cfg.bounces, last_event_id: e.id },
        },
      });
    }
    return found;
  },
};
