// The project's detection-quality evaluation (npm run eval:corpus): the SpamAssassin development folders, split
// 50/50 into train and test by a stable hash of each file name; the train half is learned into a temporary store
// and the test half analysed with the classifier and without it. "Spam" is Postern's spam verdict, the tag threshold
// (as the peers' figures count SpamAssassin's required_score and Rspamd's "add header"); the quarantine threshold's
// figures are printed as a second line. Only easy-ham-1, hard-ham-1 and spam-1 are read:
// easy-ham-2 and spam-2 are kept for an independent evaluation.
//
//   npm run eval:corpus              train on the train half, report on the test half
//   npm run eval:corpus -- --tune    split the train half again (train-A / train-B) for tuning, never the test half
//   npm run eval:corpus -- --tune --swap   the other tuning fold: train-B learned, train-A evaluated
//   npm run eval:corpus -- --json    figures as JSON
//   npm run eval:corpus -- --config extra.toml   add settings (e.g. [analysis.scores]) to the default config
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfigText } from '../src/config/load.ts';
import { openStore } from '../src/store/db.ts';
import { learnAll } from '../src/analysis/bayes/learn.ts';
import { fixedModel, loadModel } from '../src/analysis/bayes/store.ts';
import { evalScanner, formatHeld, formatMetrics, heldMetrics, judgeAll, metricsOf, type Judged } from '../src/cli/eval.ts';
import { Progress } from '../src/cli/progress.ts';
import { corpus, readCorpusItem, splitByte, type CorpusItem } from './corpus.ts';

export { splitByte };

type Item = CorpusItem;
const read = readCorpusItem;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { tune: { type: 'boolean' }, swap: { type: 'boolean' }, json: { type: 'boolean' }, dump: { type: 'string' }, config: { type: 'string' } } });
  const all = corpus();
  const isTrain = (it: Item) => (splitByte(it.name) & 1) === 0;
  let train = all.filter(isTrain);
  let test = all.filter((it) => !isTrain(it));
  if (values.tune) {
    // --swap learns train-B and evaluates train-A: a second fold of the train half, twice the evidence for tuning.
    const isA = (it: Item) => ((splitByte(it.name) & 2) === 0) !== Boolean(values.swap);
    test = train.filter((it) => !isA(it));
    train = train.filter(isA);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-eval-'));
  // The tuning split learns half as much spam as the real one, below the default min_learned of 200.
  const tuneOptions = values.tune ? '[analysis.checks.bayes]\nmin_learned = 50\n' : '';
  const extra = values.config ? fs.readFileSync(values.config, 'utf8') : '';
  const config = parseConfigText(`data_dir = ${JSON.stringify(dir)}\n${tuneOptions}${extra}`, 'eval.toml');
  const store = await openStore({ url: '', dataDir: dir });
  try {
    const learnProgress = new Progress('learn', train.length);
    await learnAll(
      store.db,
      train.map((it) => ({ raw: read(it), cls: it.cls })),
      { batch: 500, progress: (n) => learnProgress.update(n) },
    );
    learnProgress.done(train.length);
    const model = await loadModel(store.db);
    type Result = ReturnType<typeof metricsOf> & {
      by_folder: Record<string, { n: number; flagged: number; held: number }>;
      at_quarantine_threshold: ReturnType<typeof metricsOf>;
      bands: Record<string, { spam: number; ham: number }>;
    };
    const results: Record<string, Result> = {};
    const dumps: Record<string, Judged[]> = {};
    for (const noBayes of [false, true]) {
      const label = noBayes ? 'without the classifier' : 'with the classifier';
      const scanner = evalScanner(config, { bayes: fixedModel(model) }, noBayes);
      const p = new Progress(`eval ${noBayes ? 'no-bayes' : 'bayes'}`, test.length);
      const { judged, seconds } = await judgeAll(
        scanner,
        test.map((it) => ({ raw: read(it), cls: it.cls, where: `${it.folder}/${it.name}` })),
        (n) => p.update(n),
      );
      p.done(test.length);
      const byFolder: Record<string, { n: number; flagged: number; held: number }> = {};
      for (const j of judged) {
        const f = j.where.split('/')[0];
        byFolder[f] ??= { n: 0, flagged: 0, held: 0 };
        byFolder[f].n++;
        if (j.spam) byFolder[f].flagged++;
        if (j.held) byFolder[f].held++;
      }
      const bands: Record<string, { spam: number; ham: number }> = {};
      for (const j of judged) {
        for (const sym of j.symbols) {
          if (!sym.startsWith('BAYES_')) continue;
          bands[sym] ??= { spam: 0, ham: 0 };
          bands[sym][j.cls]++;
        }
      }
      const { actions } = config.analysis;
      results[label] = {
        ...metricsOf(judged, seconds, actions.tag),
        by_folder: byFolder,
        at_quarantine_threshold: heldMetrics(judged, seconds, actions.quarantine),
        bands,
      };
      dumps[label] = judged;
    }
    if (values.dump) fs.writeFileSync(values.dump, JSON.stringify(dumps));
    const head = {
      split: values.tune ? (values.swap ? 'tune: train-B learned, train-A evaluated' : 'tune: train-A learned, train-B evaluated') : 'train learned, test evaluated',
      learned: { spam: model.spamMessages, ham: model.hamMessages },
      evaluated: test.length,
    };
    if (values.json) console.log(JSON.stringify({ ...head, results }, null, 2));
    else {
      console.log(`${head.split}; learned ${head.learned.spam} spam and ${head.learned.ham} ham; ${head.evaluated} messages evaluated`);
      for (const [label, m] of Object.entries(results)) {
        console.log(formatMetrics(label, m));
        console.log(`  marked as spam per folder: ${Object.entries(m.by_folder).map(([f, x]) => `${f} ${x.flagged}/${x.n}`).join(', ')}`);
        console.log(formatHeld(m.at_quarantine_threshold));
        console.log(`  held per folder: ${Object.entries(m.by_folder).map(([f, x]) => `${f} ${x.held}/${x.n}`).join(', ')}`);
        const bands = Object.entries(m.bands).sort();
        if (bands.length) console.log(`  classifier bands (spam/ham messages): ${bands.map(([b, x]) => `${b} ${x.spam}/${x.ham}`).join(', ')}`);
      }
    }
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
