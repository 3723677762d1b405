// postern eval: runs the full offline analysis on labelled spam and ham and prints precision, recall, F1 and the
// false-positive rate on ham. "Spam" means Postern marks the message as spam: the score reaches the tag threshold
// ([analysis.actions]), the verdict SpamAssassin's required_score and Rspamd's "add header" give; the figures at the
// quarantine threshold (held, not delivered) follow on a second line.
import type { Config } from '../config/schema.ts';
import type { BayesClass } from '../analysis/bayes/classifier.ts';
import { loadModel, fixedModel } from '../analysis/bayes/store.ts';
import type { AnalysisServices } from '../analysis/check.ts';
import { CHECKS } from '../analysis/checks/index.ts';
import { OfflineScanner } from '../analysis/offline.ts';
import { args, load, withStore } from './common.ts';
import { classified, classifiedFiles } from './learn.ts';
import { Progress } from './progress.ts';

const USAGE = 'usage: postern eval --spam PATH... --ham PATH... [--no-bayes] [--json] [--config FILE]';

export interface Judged {
  where: string;
  cls: BayesClass;
  score: number;
  /** Marked as spam: the score reaches the tag threshold, or a symbol forces a refusal. */
  spam: boolean;
  /** Held: the score reaches the quarantine threshold, or a symbol forces a refusal. */
  held: boolean;
  symbols: string[];
}

export interface Metrics {
  spam: number;
  ham: number;
  true_positives: number;
  false_positives: number;
  false_negatives: number;
  precision: number;
  recall: number;
  f1: number;
  /** False positives over all ham. */
  ham_fpr: number;
  messages_per_s: number;
  /** The threshold a message had to reach to count as spam. */
  threshold: number;
}

export function metricsOf(judged: readonly Pick<Judged, 'cls' | 'spam'>[], seconds: number, threshold: number): Metrics {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let spam = 0;
  let ham = 0;
  for (const j of judged) {
    if (j.cls === 'spam') {
      spam++;
      if (j.spam) tp++;
      else fn++;
    } else {
      ham++;
      if (j.spam) fp++;
    }
  }
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
  return {
    spam,
    ham,
    true_positives: tp,
    false_positives: fp,
    false_negatives: fn,
    precision: r4(precision),
    recall: r4(recall),
    f1: r4(precision + recall ? (2 * precision * recall) / (precision + recall) : 0),
    ham_fpr: r4(ham ? fp / ham : 0),
    messages_per_s: seconds > 0 ? Math.round(judged.length / seconds) : 0,
    threshold,
  };
}

/** Scans every message with the full analysis; the time counted is the analysis, not the reading of files. */
export async function judgeAll(
  scanner: OfflineScanner,
  messages: Iterable<{ raw: Buffer; cls: BayesClass; where: string }>,
  progress?: (done: number) => void,
): Promise<{ judged: Judged[]; seconds: number }> {
  const judged: Judged[] = [];
  let busy = 0;
  for (const m of messages) {
    const t = performance.now();
    const r = await scanner.scan(m.raw);
    busy += performance.now() - t;
    judged.push({ where: m.where, cls: m.cls, score: r.score, spam: r.action !== 'accept', held: r.spam, symbols: r.hits.map((h) => h.name) });
    progress?.(judged.length);
  }
  return { judged, seconds: busy / 1000 };
}

/** The same messages judged by whether they were held (quarantine threshold) instead of marked as spam. */
export function heldMetrics(judged: readonly Judged[], seconds: number, threshold: number): Metrics {
  return metricsOf(
    judged.map((j) => ({ cls: j.cls, spam: j.held })),
    seconds,
    threshold,
  );
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** The primary figures, at the tag threshold (marked as spam). */
export function formatMetrics(label: string, m: Metrics): string {
  return [
    `${label}: ${m.spam} spam, ${m.ham} ham; spam = score >= ${m.threshold} (the tag threshold: marked as spam)`,
    `  precision ${m.precision.toFixed(4)}  recall ${m.recall.toFixed(4)}  F1 ${m.f1.toFixed(4)}`,
    `  ham false positives ${m.false_positives} (${pct(m.ham_fpr)})  spam missed ${m.false_negatives}  ${m.messages_per_s} messages/s`,
  ].join('\n');
}

/** The second line: the figures at the quarantine threshold (held). */
export function formatHeld(m: Metrics): string {
  return `  held at the quarantine threshold (${m.threshold}): precision ${m.precision.toFixed(4)} recall ${m.recall.toFixed(4)} F1 ${m.f1.toFixed(4)} ham FP ${m.false_positives} (${pct(m.ham_fpr)})`;
}

/** The scanner `postern eval` uses: every registered check, and the store's model unless the classifier is off. */
export function evalScanner(config: Config, services: AnalysisServices, noBayes: boolean): OfflineScanner {
  return new OfflineScanner({ config, checks: noBayes ? CHECKS.filter((c) => c.name !== 'bayes') : CHECKS, services: noBayes ? {} : services });
}

export async function runEval(argv: string[]): Promise<number> {
  const { values } = args(argv, {
    spam: { type: 'string', multiple: true },
    ham: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    'no-bayes': { type: 'boolean' },
  });
  const spam = values.spam ?? [];
  const ham = values.ham ?? [];
  if (spam.length === 0 || ham.length === 0) {
    console.error(USAGE);
    return 64;
  }
  const files = classifiedFiles(spam, ham);
  const loaded = load(values.config);
  const noBayes = Boolean(values['no-bayes']);
  const model = noBayes ? undefined : await withStore(loaded, (s) => loadModel(s.db));
  const scanner = evalScanner(loaded.config, model ? { bayes: fixedModel(model) } : {}, noBayes);
  const progress = new Progress('eval', files.length);
  let filesDone = 0;
  let skipped = 0;
  const { judged, seconds } = await judgeAll(
    scanner,
    classified(files, (n) => (filesDone = n), () => skipped++),
    (done) => progress.update(filesDone, `${done} messages`),
  );
  progress.done(files.length, `${judged.length} messages`);
  const { actions } = loaded.config.analysis;
  const m = metricsOf(judged, seconds, actions.tag);
  const held = heldMetrics(judged, seconds, actions.quarantine);
  if (values.json) {
    const wrong = judged.filter((j) => j.spam !== (j.cls === 'spam')).map((j) => ({ where: j.where, class: j.cls, score: j.score, symbols: j.symbols }));
    const model_ = model ? { spam: model.spamMessages, ham: model.hamMessages } : null;
    console.log(JSON.stringify({ bayes: !noBayes, model: model_, skipped_files: skipped, ...m, at_quarantine_threshold: held, wrong }, null, 2));
  } else {
    if (model) console.log(`model: ${model.spamMessages} spam and ${model.hamMessages} ham learned`);
    if (skipped) console.log(`${skipped} files skipped: not messages`);
    console.log(formatMetrics(noBayes ? 'without the classifier' : 'with the classifier', m));
    console.log(formatHeld(held));
  }
  return 0;
}
