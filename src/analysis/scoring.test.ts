// From symbols to an action: group caps, forced refusals, and symbols that hold a message in quarantine.
import { describe, expect, it } from 'vitest';
import { defineCheck, type SymbolHit } from './check.ts';
import { actionForScore, ScoreTable, total } from './scoring.ts';

const check = defineCheck({
  name: 'demo',
  phase: 'data',
  symbols: {
    SPAMMY: { score: 5, group: 'content', description: 'spammy words' },
    LOOKS_LIKE: { score: 6, group: 'business', description: 'look-alike domain', hold: true },
    SAFE: { score: -3, group: 'business', description: 'a partner' },
  },
  run() {},
});
const actions = { tag: 5, quarantine: 8, reject: 15 };
const hit = (name: string, score: number): SymbolHit => ({ name, check: 'demo', score, weight: 1 });

describe('scoring', () => {
  it('holds a message with a holding symbol whatever the rest scores, and never refuses it for that symbol', () => {
    const t = new ScoreTable([check], {});
    // Nothing else scores: held on the symbol alone.
    expect(actionForScore(total([hit('LOOKS_LIKE', 6), hit('SAFE', -3)], t), actions)).toBe('quarantine');
    // 12 without it, 18 with it: still held, not refused.
    const s = total([hit('SPAMMY', 12), hit('LOOKS_LIKE', 6)], t);
    expect(s).toMatchObject({ score: 18, baseScore: 12, held: ['LOOKS_LIKE'] });
    expect(actionForScore(s, actions)).toBe('quarantine');
    // The rest reaches the reject threshold on its own: refused.
    expect(actionForScore(total([hit('SPAMMY', 16), hit('LOOKS_LIKE', 6)], t), actions)).toBe('reject');
    // Without the holding symbol, the plain thresholds.
    expect(actionForScore(total([hit('SPAMMY', 16)], t), actions)).toBe('reject');
    expect(actionForScore(total([hit('SPAMMY', 3)], t), actions)).toBe('accept');
  });

  it('lets [analysis.scores] make any symbol hold or refuse, and a refusal override a hold', () => {
    const held = new ScoreTable([check], { SPAMMY: 'quarantine' });
    expect(actionForScore(total([hit('SPAMMY', 0)], held), actions)).toBe('quarantine');
    const refused = new ScoreTable([check], { LOOKS_LIKE: 'reject' });
    expect(actionForScore(total([hit('LOOKS_LIKE', 6)], refused), actions)).toBe('reject');
  });
});
