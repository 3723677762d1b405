// Symbols to a score (weights, group caps) and the score to an action by the configured thresholds.
import type { Config } from '../config/schema.ts';
import type { Check, SymbolGroup, SymbolHit, SymbolSpec } from './check.ts';
import { GATEWAY_SYMBOLS } from './gateway-symbols.ts';

/** Most a group of correlated symbols may add (rspamd's group max_score). */
export const GROUP_CAPS: Partial<Record<SymbolGroup, number>> = {
  protocol: 8,
  headers: 8,
  envelope: 6,
};

export class ScoreTable {
  private specs = new Map<string, SymbolSpec>();

  constructor(
    checks: readonly Check[],
    private readonly overrides: Config['analysis']['scores'],
  ) {
    for (const c of checks) for (const [name, spec] of Object.entries(c.symbols)) this.specs.set(name, spec);
    for (const [name, spec] of Object.entries(GATEWAY_SYMBOLS)) this.specs.set(name, spec);
  }

  spec(name: string): SymbolSpec | undefined {
    return this.specs.get(name);
  }

  scoreOf(name: string): number {
    const o = this.overrides[name];
    if (typeof o === 'number') return o;
    return this.specs.get(name)?.score ?? 0;
  }

  forcesReject(name: string): boolean {
    return this.overrides[name] === 'reject';
  }

  /** A symbol that holds the message (its spec's hold, or "quarantine" in [analysis.scores]). */
  holds(name: string): boolean {
    const o = this.overrides[name];
    return o === 'quarantine' || (o !== 'reject' && this.specs.get(name)?.hold === true);
  }
}

export interface Scored {
  score: number;
  forcedReject: string[];
  /** Symbols that hold the message in quarantine at least. */
  held: string[];
  /** The score without the holding symbols: only this can turn a held message into a refusal. */
  baseScore: number;
}

function sum(hits: readonly SymbolHit[], table: ScoreTable): number {
  const byGroup = new Map<string, number>();
  for (const h of hits) {
    const g = table.spec(h.name)?.group ?? 'other';
    byGroup.set(g, (byGroup.get(g) ?? 0) + h.score);
  }
  let score = 0;
  for (const [g, s] of byGroup) {
    const cap = GROUP_CAPS[g as SymbolGroup];
    score += cap !== undefined && s > cap ? cap : s;
  }
  return Math.round(score * 100) / 100;
}

export function total(hits: readonly SymbolHit[], table: ScoreTable): Scored {
  const forcedReject = hits.filter((h) => table.forcesReject(h.name)).map((h) => h.name);
  const held = hits.filter((h) => table.holds(h.name)).map((h) => h.name);
  const score = sum(hits, table);
  return { score, forcedReject, held, baseScore: held.length ? sum(hits.filter((h) => !table.holds(h.name)), table) : score };
}

export type ThresholdAction = 'accept' | 'tag' | 'quarantine' | 'reject';

/**
 * A holding symbol (a look-alike of a partner's domain, say) makes the message wait in quarantine for a person to
 * look at it, whatever the rest scores, but is never by itself the reason it is refused: a held message lets its
 * recipient find a false positive, a refused one is gone.
 */
export function actionForScore(s: Scored, t: Config['analysis']['actions']): ThresholdAction {
  if (s.forcedReject.length) return 'reject';
  if (s.held.length) return s.baseScore >= t.reject ? 'reject' : 'quarantine';
  if (s.score >= t.reject) return 'reject';
  if (s.score >= t.quarantine) return 'quarantine';
  if (s.score >= t.tag) return 'tag';
  return 'accept';
}
