// Learning into the real store (SQLite here; test/integration/bayes.test.ts runs on PostgreSQL too): idempotent per
// message, moving a message unlearns it first, and a running process picks up what another one learned.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openStore, type StoreDb } from '../../store/db.ts';
import { modelFromItems, type BayesClass } from './classifier.ts';
import { BayesService, learnBatch, loadModel, modelVersion, type LearnItem } from './store.ts';

const open: { s: StoreDb; dir: string }[] = [];
afterEach(async () => {
  for (const { s, dir } of open.splice(0)) {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function store(): Promise<StoreDb> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-bayes-'));
  const s = await openStore({ url: '', dataDir: dir });
  open.push({ s, dir });
  return s;
}

const item = (digest: string, cls: BayesClass, tokens: string[]): LearnItem => ({ digest, cls, tokens });

describe('bayes store', () => {
  it('learns a message once per class, and moving it to the other class unlearns it first', async () => {
    const { db } = await store();
    expect(await learnBatch(db, [item('m1', 'spam', ['cash', 'now'])])).toEqual({ learned: 1, unchanged: 0, moved: 0 });
    const v1 = await modelVersion(db);
    expect(await learnBatch(db, [item('m1', 'spam', ['cash', 'now'])])).toEqual({ learned: 0, unchanged: 1, moved: 0 });
    expect(await modelVersion(db)).toBe(v1);
    let m = await loadModel(db);
    expect([m.spamMessages, m.hamMessages]).toEqual([1, 0]);
    expect(m.tokens.get('cash')).toEqual({ spam: 1, ham: 0 });
    expect(await learnBatch(db, [item('m1', 'ham', ['cash', 'now'])])).toEqual({ learned: 0, unchanged: 0, moved: 1 });
    m = await loadModel(db);
    expect([m.spamMessages, m.hamMessages]).toEqual([0, 1]);
    expect(m.tokens.get('cash')).toEqual({ spam: 0, ham: 1 });
    expect(await modelVersion(db)).toBeGreaterThan(v1);
  });

  it('ends with the counts of each message learned once in its last class, whatever the order (fast-check)', async () => {
    const s = await store();
    const vocab = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const op = fc.record({ msg: fc.integer({ min: 0, max: 5 }), cls: fc.constantFrom<BayesClass>('spam', 'ham') });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 }), async (batches) => {
        // A fresh namespace of digests per run, so runs do not see each other's messages; tokens are shared on purpose.
        const prefix = `r${run++}:`;
        const before = await loadModel(s.db);
        const tokensOf = (msg: number) => vocab.filter((_, i) => (msg + 1) & (1 << i % 3) || i === msg);
        const last = new Map<number, BayesClass>();
        for (const batch of batches) {
          await learnBatch(s.db, batch.map((o) => item(`${prefix}${o.msg}`, o.cls, tokensOf(o.msg))));
          for (const o of batch) last.set(o.msg, o.cls);
        }
        const after = await loadModel(s.db);
        const expected = modelFromItems([...last].map(([msg, cls]) => ({ cls, tokens: tokensOf(msg) })));
        expect(after.spamMessages - before.spamMessages).toBe(expected.spamMessages);
        expect(after.hamMessages - before.hamMessages).toBe(expected.hamMessages);
        for (const t of vocab) {
          const a = after.tokens.get(t) ?? { spam: 0, ham: 0 };
          const b = before.tokens.get(t) ?? { spam: 0, ham: 0 };
          const e = expected.tokens.get(t) ?? { spam: 0, ham: 0 };
          expect({ t, spam: a.spam - b.spam, ham: a.ham - b.ham }).toEqual({ t, ...e });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('reloads the in-memory model when another handle on the store learned, and only then', async () => {
    const s = await store();
    const service = new BayesService(s.db);
    await service.load();
    const m0 = service.model();
    expect(await service.refresh()).toBe(false);
    expect(service.model()).toBe(m0);
    // Another process: a second connection to the same database file.
    const other = await openStore({ url: '', dataDir: open[open.length - 1].dir });
    try {
      await learnBatch(other.db, [item('x', 'spam', ['lottery'])]);
    } finally {
      await other.close();
    }
    expect(await service.refresh()).toBe(true);
    expect(service.model().tokens.get('lottery')).toEqual({ spam: 1, ham: 0 });
  });
});
