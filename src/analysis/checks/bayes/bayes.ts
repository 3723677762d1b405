// Bayes: the learned statistical classifier's verdict on the message, as one symbol per probability band.
import { z } from 'zod';
import { defineCheck } from '../../check.ts';
import { tokenize } from '../../bayes/tokenize.ts';

const options = z.strictObject({
  min_learned: z
    .number()
    .int()
    .min(1)
    .default(200)
    .meta({ description: 'No Bayes symbol fires until the model has learned at least this many spam and this many ham messages.' }),
  reload_interval_ms: z
    .number()
    .int()
    .min(100)
    .default(5_000)
    .meta({ description: 'How often the store is asked whether the model changed (another process learned); a change reloads it into memory.' }),
});

export const bayes = defineCheck({
  name: 'bayes',
  phase: 'data',
  options,
  symbols: {
    // Below the default quarantine threshold (8) on its own, above the tag threshold (5): the classifier holds a
    // message only with some other evidence. On the corpus tuning split no ham reached 99% (docs/benchmarks.md).
    // The 90–99% band holds about one hard-ham newsletter for every five spam on the two tuning folds, so it weighs
    // 3: it marks a message as spam only together with two points of other evidence.
    BAYES_SPAM_99: { score: 7, group: 'content', description: 'Learned classifier: spam probability at least 99%' },
    BAYES_SPAM_90: { score: 3, group: 'content', description: 'Learned classifier: spam probability 90% to 99%' },
    BAYES_HAM_90: { score: -2, group: 'content', description: 'Learned classifier: spam probability 1% to 10%' },
    BAYES_HAM_99: { score: -4, group: 'content', description: 'Learned classifier: spam probability at most 1%' },
  },
  async run({ message }, ctx) {
    const model = ctx.services.bayes?.model();
    if (!message || !model) return;
    if (model.spamMessages < ctx.options.min_learned || model.hamMessages < ctx.options.min_learned) return;
    const { prob, clues, top } = model.classify(await tokenize(message));
    if (clues === 0) return;
    const detail = [prob.toFixed(4), ...top.map(([t, p]) => `${t.slice(0, 40)}=${p}`)];
    if (prob >= 0.99) ctx.hit('BAYES_SPAM_99', { detail });
    else if (prob >= 0.9) ctx.hit('BAYES_SPAM_90', { detail });
    else if (prob <= 0.01) ctx.hit('BAYES_HAM_99', { detail });
    else if (prob <= 0.1) ctx.hit('BAYES_HAM_90', { detail });
  },
});
