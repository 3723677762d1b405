// Flood or spike: a source address or a sender domain sending far above its own baseline. Each key keeps a count for
// the current window and an exponential average of past windows; a window at `factor` times that average (and at
// least min_messages) throttles the key to a multiple of its baseline for ttl_s.
import type { Config } from '../../config/schema.ts';
import type { Detector, DetectorContext, Finding, MatrixEvent } from '../detector.ts';
import { plainIp, str } from '../detector.ts';

interface Rate {
  start: number;
  count: number;
  baseline: number;
  /** Windows seen, so a young key's average is not read as settled. */
  windows: number;
}

const MAX_KEYS = 200_000;

export function floodDetector(): Detector {
  const rates = new Map<string, Rate>();
  const step = (key: string, ts: number, cfg: Config['trends']['flood']): Rate => {
    const width = cfg.window_s * 1000;
    const alpha = 2 / (cfg.baseline_windows + 1);
    let r = rates.get(key);
    if (!r) {
      if (rates.size >= MAX_KEYS) rates.delete(rates.keys().next().value as string);
      r = { start: ts - (ts % width), count: 0, baseline: 0, windows: 0 };
      rates.set(key, r);
    }
    if (ts >= r.start + width) {
      // Close the window that ended, then decay through the empty ones after it.
      const elapsed = Math.floor((ts - r.start) / width);
      // The average starts from zero: a new source is judged by min_messages alone until its history builds up
      // (starting it from the first window would let a flood that straddles a window boundary set its own baseline).
      r.baseline += alpha * (r.count - r.baseline);
      r.baseline *= Math.pow(1 - alpha, Math.min(elapsed - 1, 1000));
      r.windows += elapsed;
      r.start += elapsed * width;
      r.count = 0;
    }
    r.count++;
    return r;
  };
  return {
    name: 'flood',
    types: ['message.accepted', 'smtp.data.rejected'],
    horizonMs: (c) => c.trends.flood.window_s * c.trends.flood.baseline_windows * 1000,
    observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined {
      const cfg = ctx.config.trends.flood;
      const found: Finding[] = [];
      const keys: ['ip' | 'domain', string][] = [];
      if (e.ip && !ctx.trusted(e.ip)) keys.push(['ip', plainIp(e.ip)]);
      const from = str(e.data.from);
      const at = from ? from.lastIndexOf('@') : -1;
      // A sender's domain as the gateway saw it; one that could not be a policy target (empty, odd characters) is
      // left to the address's count.
      const domain = from && at > 0 ? from.slice(at + 1).toLowerCase() : '';
      if (/^[a-z0-9\p{L}]([a-z0-9\p{L}.-]*[a-z0-9\p{L}])?$/u.test(domain)) keys.push(['domain', domain]);
      for (const [kind, key] of keys) {
        const r = step(`${kind}:${key}`, e.ts, cfg);
        const limit = Math.max(cfg.min_messages, cfg.factor * r.baseline);
        if (r.count < limit) continue;
        const rate = Math.max(1, Math.ceil(cfg.throttle_factor * r.baseline), Math.ceil(cfg.min_messages / cfg.factor));
        found.push({
          detector: 'flood',
          policy: {
            target_kind: kind,
            target: key,
            action: 'throttle',
            params: { rate, window_s: cfg.window_s },
            reason: `flood: ${r.count} messages in ${cfg.window_s} s against a baseline of ${r.baseline.toFixed(1)}`,
            ttl_s: cfg.ttl_s,
            source: 'analyzer:flood',
            evidence: { window_s: cfg.window_s, messages: r.count, baseline: Math.round(r.baseline * 100) / 100, windows_seen: r.windows, factor: cfg.factor, last_event_id: e.id },
          },
        });
      }
      return found;
    },
  };
}
