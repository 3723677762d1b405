// Symbols to a score (weights, group caps) and the score to an action by the configured thresholds.
import type { Config } from '../config/schema.ts';
import type { Check, SymbolGroup, SymbolHit, SymbolSpec } from './check.ts';

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
}

export interface Scored {
  score: number;
  forcedReject: string[];
}

export function total(hits: readonly SymbolHit[], table: ScoreTable): Scored {
  const byGroup = new Map<string, number>();
  const forcedReject: string[] = [];
  for (const h of hits) {
    if (table.forcesReject(h.name)) forcedReject.push(h.name);
    const g = table.spec(h.name)?.group ?? 'other';
    byGroup.set(g, (byGroup.get(g) ?? 0) + h.score);
  }
  let score = 0;
  for (const [g, s] of byGroup) {
    const cap = GROUP_CAPS[g as SymbolGroup];
    score += cap !== undefined && s > cap ? cap : s;
  }
  return { score: Math.round(score * 100) / 100, forcedReject };
}

export type ThresholdAction = 'accept' | 'tag' | 'quarantine' | 'reject';

export function actionForScore(s: Scored, t: Config['analysis']['actions']): ThresholdAction {
  if (s.forcedReject.length || s.score >= t.reject) return 'reject';
  if (s.score >= t.quarantine) return 'quarantine';
  if (s.score >= t.tag) return 'tag';
  return 'accept';
}
