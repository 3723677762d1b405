// Symbols the gateway adds after the checks, not a check's: they depend on the score of everything else (only a
// suspicious message counts towards an outbreak) and on the clusters the analyzer keeps (gateway/phases/data.ts with
// similarity/watch.ts). Declared here so that scores, [analysis.scores] overrides and docs/symbols.md know them.
import type { SymbolSpec } from './check.ts';

export const GATEWAY_SYMBOLS: Readonly<Record<string, SymbolSpec>> = {
  OUTBREAK: {
    score: 8,
    group: 'similarity',
    // Held whatever else it scores; a refusal needs the rest of the score (or an outbreak.action of block).
    hold: true,
    description: 'Like the members of a cluster declared an outbreak (the time-zero rule or an admin), or the copy that makes its cluster meet the rule',
  },
  SIMILAR_CAMPAIGN: {
    score: 1,
    group: 'similarity',
    description: 'Suspicious, and like recent messages from several other sources (outbreak.min_sources), not yet an outbreak',
  },
};
