// The small committed training set of the bayes check's cases (training/{spam,ham}/*.eml, taken from the public
// SpamAssassin corpus), learned into an in-memory model for the case runner.
import fs from 'node:fs';
import path from 'node:path';
import { modelFromItems, type BayesClass, type BayesModel } from '../../bayes/classifier.ts';
import { learnItem } from '../../bayes/learn.ts';

export const TRAINING_DIR = path.join(import.meta.dirname, 'training');

let cached: Promise<BayesModel> | undefined;

export function trainingModel(): Promise<BayesModel> {
  cached ??= (async () => {
    const items = [];
    for (const cls of ['spam', 'ham'] as BayesClass[]) {
      const dir = path.join(TRAINING_DIR, cls);
      for (const f of fs.readdirSync(dir).sort()) items.push(await learnItem(fs.readFileSync(path.join(dir, f)), cls));
    }
    return modelFromItems(items);
  })();
  return cached;
}
