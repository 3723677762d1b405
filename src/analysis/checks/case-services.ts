// The shared analysis services the fixture cases run with: the classifier's model learned from the bayes check's
// committed training set, and the correspondents of business/fixtures/history.json. Checks that use no service
// ignore them.
import fs from 'node:fs';
import path from 'node:path';
import type { AnalysisServices } from '../check.ts';
import { trainingModel } from './bayes/training-model.ts';
import { CorrespondentBook } from '../../outbound/correspondents.ts';
import { CHECKS_DIR, DEFAULT_NOW } from './cases.ts';

export async function caseServices(): Promise<AnalysisServices> {
  const model = await trainingModel();
  return { bayes: { model: () => model }, correspondents: caseCorrespondents() };
}

function caseCorrespondents(): CorrespondentBook {
  type Dated<T> = Omit<T, 'first_seen' | 'last_seen' | 'sent_at'> & { first_seen?: string; last_seen?: string; sent_at?: string };
  const h = JSON.parse(fs.readFileSync(path.join(CHECKS_DIR, 'business', 'fixtures', 'history.json'), 'utf8')) as {
    correspondents: Dated<{ internal: string; external: string; messages: number }>[];
    sent: Dated<{ message_id: string; sender: string; recipients: string[] }>[];
    steady: Dated<{ domain: string; messages: number }>[];
  };
  const t = (iso?: string) => Date.parse(iso ?? DEFAULT_NOW);
  const now = t(DEFAULT_NOW);
  return new CorrespondentBook(null, { sentRetentionMs: 180 * 86_400_000 }, undefined, () => now).seed({
    correspondents: h.correspondents.map((r) => ({ ...r, first_seen: t(r.first_seen), last_seen: t(r.last_seen) })),
    sent: h.sent.map((r) => ({ ...r, sent_at: t(r.sent_at) })),
    steady: h.steady.map((r) => ({ ...r, first_seen: t(r.first_seen), last_seen: t(r.last_seen) })),
  });
}
