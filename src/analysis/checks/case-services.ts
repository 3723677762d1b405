// The shared analysis services the fixture cases run with: the classifier's model learned from the bayes check's
// committed training set. Checks that use no service ignore them.
import type { AnalysisServices } from '../check.ts';
import { trainingModel } from './bayes/training-model.ts';

export async function caseServices(): Promise<AnalysisServices> {
  const model = await trainingModel();
  return { bayes: { model: () => model } };
}
