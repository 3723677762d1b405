// postern learn: teaches the classifier spam and ham from files, folders and mbox files, into the configured store.
import type { BayesClass } from '../analysis/bayes/classifier.ts';
import { learnAll } from '../analysis/bayes/learn.ts';
import { args, load, withStore } from './common.ts';
import { listFiles, messagesOfFile } from './mail-files.ts';
import { Progress } from './progress.ts';

const USAGE = 'usage: postern learn [--spam PATH]... [--ham PATH]... [--config FILE] [--json]';

/** Every message of the given files, with its class; tells `onFile` as each file is finished. */
export function* classified(
  files: readonly [string, BayesClass][],
  onFile: (n: number) => void = () => undefined,
  onSkip: (file: string) => void = () => undefined,
): Generator<{ raw: Buffer; cls: BayesClass; where: string }> {
  let n = 0;
  for (const [file, cls] of files) {
    for (const m of messagesOfFile(file, onSkip)) yield { raw: m.raw, cls, where: m.where };
    onFile(++n);
  }
}

export function classifiedFiles(spam: readonly string[], ham: readonly string[]): [string, BayesClass][] {
  return [...listFiles(spam).map((f) => [f, 'spam'] as [string, BayesClass]), ...listFiles(ham).map((f) => [f, 'ham'] as [string, BayesClass])];
}

export async function runLearn(argv: string[]): Promise<number> {
  const { values } = args(argv, { spam: { type: 'string', multiple: true }, ham: { type: 'string', multiple: true }, json: { type: 'boolean' } });
  const spam = values.spam ?? [];
  const ham = values.ham ?? [];
  if (spam.length + ham.length === 0) {
    console.error(USAGE);
    return 64;
  }
  const files = classifiedFiles(spam, ham);
  const loaded = load(values.config);
  const t0 = performance.now();
  return withStore(loaded, async (s) => {
    const progress = new Progress('learn', files.length);
    let filesDone = 0;
    let messages = 0;
    let skipped = 0;
    const r = await learnAll(s.db, classified(files, (n) => (filesDone = n), () => skipped++), {
      progress: (done) => {
        messages = done;
        progress.update(filesDone, `${done} messages`);
      },
    });
    progress.done(files.length, `${messages} messages`);
    const secs = (performance.now() - t0) / 1000;
    const summary = { files: files.length, messages, skipped, ...r, seconds: Math.round(secs * 10) / 10 };
    if (values.json) console.log(JSON.stringify(summary));
    else {
      console.log(
        `learned ${r.learned} new, ${r.moved} moved to the other class, ${r.unchanged} already known` +
          `${r.failed ? `, ${r.failed} unreadable` : ''} (${messages} messages from ${files.length} files in ${summary.seconds} s` +
          `${skipped ? `; ${skipped} files skipped, not messages` : ''})`,
      );
    }
    return r.failed > 0 && r.failed === messages ? 1 : 0;
  });
}
