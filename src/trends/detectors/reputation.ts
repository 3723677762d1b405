// Bad source: an address whose recent messages were mostly refused or held. A message counts as bad when it was
// refused after DATA, or when most of its recipients were quarantined or refused.
import type { Detector, DetectorContext, Finding, MatrixEvent } from '../detector.ts';
import { plainIp } from '../detector.ts';

const BAD = new Set(['quarantine', 'reject', 'defer']);

export const reputation: Detector = {
  name: 'reputation',
  types: ['message.accepted', 'smtp.data.rejected'],
  horizonMs: (c) => c.trends.reputation.window_s * 1000,
  observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined {
    const cfg = ctx.config.trends.reputation;
    if (!e.ip || ctx.trusted(e.ip)) return;
    const ip = plainIp(e.ip);
    const win = cfg.window_s * 1000;
    let bad: boolean;
    if (e.type === 'smtp.data.rejected') {
      // Refusals for our own trouble (storage, a failed check) say nothing of the sender.
      const reply = String(e.data.reply ?? '');
      bad = reply.startsWith('5');
    } else {
      const rcpts = Array.isArray(e.data.recipients) ? (e.data.recipients as { action?: string }[]) : [];
      bad = rcpts.length > 0 && rcpts.filter((r) => BAD.has(String(r.action))).length * 2 > rcpts.length;
    }
    const total = ctx.windows.add(`r:all:${ip}`, win, e.ts);
    const badCount = bad ? ctx.windows.add(`r:bad:${ip}`, win, e.ts) : ctx.windows.total(`r:bad:${ip}`, win, e.ts);
    if (total < cfg.min_messages || badCount / total < cfg.bad_ratio) return;
    return [
      {
        detector: 'reputation',
        policy: {
          target_kind: 'ip',
          target: ip,
          action: 'block',
          reason: `bad source: ${badCount} of its last ${total} messages refused or quarantined`,
          ttl_s: cfg.ttl_s,
          source: 'analyzer:reputation',
          evidence: { window_s: cfg.window_s, messages: total, bad: badCount, ratio: Math.round((badCount / total) * 1000) / 1000, threshold: cfg.bad_ratio, last_event_id: e.id },
        },
      },
    ];
  },
};
