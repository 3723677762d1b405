// The classifier's model in the store: idempotent learning by message digest, loading, and reload on a new version.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import { BayesModel, type BayesClass, type TokenCounts } from './classifier.ts';

export interface LearnItem {
  digest: string;
  cls: BayesClass;
  tokens: readonly string[];
}

export interface LearnResult {
  /** Newly learned. */
  learned: number;
  /** Learned before in the same class: nothing changed. */
  unchanged: number;
  /** Learned before in the other class: unlearned there, learned here. */
  moved: number;
}

const CHUNK = 300;

/**
 * Learns a batch of messages in one transaction. A digest already learned in the same class changes nothing; one
 * learned in the other class is unlearned first (its tokens are the same, the digest being of the same bytes).
 * Two learners writing at once may race on the same digest; learning is an administrative act, run one at a time.
 */
export async function learnBatch(db: Kysely<DB>, items: readonly LearnItem[], now = Date.now()): Promise<LearnResult> {
  const res: LearnResult = { learned: 0, unchanged: 0, moved: 0 };
  const byDigest = new Map<string, LearnItem>();
  for (const it of items) byDigest.set(it.digest, it);
  if (byDigest.size === 0) return res;
  await db.transaction().execute(async (trx) => {
    const digests = [...byDigest.keys()];
    const prior = new Map<string, string>();
    for (let i = 0; i < digests.length; i += CHUNK) {
      const rows = await trx.selectFrom('bayes_learned').select(['digest', 'class']).where('digest', 'in', digests.slice(i, i + CHUNK)).execute();
      for (const r of rows) prior.set(r.digest, r.class);
    }
    const delta = new Map<string, TokenCounts>();
    const bump = (t: string, cls: BayesClass, by: number) => {
      let d = delta.get(t);
      if (!d) delta.set(t, (d = { spam: 0, ham: 0 }));
      d[cls] += by;
    };
    let dSpam = 0;
    let dHam = 0;
    const learnedRows: { digest: string; class: string; learned_at: number }[] = [];
    for (const it of byDigest.values()) {
      const was = prior.get(it.digest);
      if (was === it.cls) {
        res.unchanged++;
        continue;
      }
      if (was === 'spam' || was === 'ham') {
        for (const t of it.tokens) bump(t, was, -1);
        if (was === 'spam') dSpam--;
        else dHam--;
        res.moved++;
      } else res.learned++;
      for (const t of it.tokens) bump(t, it.cls, 1);
      if (it.cls === 'spam') dSpam++;
      else dHam++;
      learnedRows.push({ digest: it.digest, class: it.cls, learned_at: now });
    }
    if (learnedRows.length === 0) return;
    const rows = [...delta].filter(([, d]) => d.spam !== 0 || d.ham !== 0).map(([token, d]) => ({ token, spam: d.spam, ham: d.ham }));
    for (let i = 0; i < rows.length; i += CHUNK) {
      await trx
        .insertInto('bayes_tokens')
        .values(rows.slice(i, i + CHUNK))
        .onConflict((oc) =>
          oc.column('token').doUpdateSet({
            spam: sql<number>`case when bayes_tokens.spam + excluded.spam < 0 then 0 else bayes_tokens.spam + excluded.spam end`,
            ham: sql<number>`case when bayes_tokens.ham + excluded.ham < 0 then 0 else bayes_tokens.ham + excluded.ham end`,
          }),
        )
        .execute();
    }
    for (let i = 0; i < learnedRows.length; i += CHUNK) {
      await trx
        .insertInto('bayes_learned')
        .values(learnedRows.slice(i, i + CHUNK))
        .onConflict((oc) => oc.column('digest').doUpdateSet({ class: sql<string>`excluded.class`, learned_at: sql<number>`excluded.learned_at` }))
        .execute();
    }
    if (res.moved > 0) await trx.deleteFrom('bayes_tokens').where('spam', '<=', 0).where('ham', '<=', 0).execute();
    await trx
      .updateTable('bayes_state')
      .set({
        spam_messages: sql<number>`case when spam_messages + ${dSpam} < 0 then 0 else spam_messages + ${dSpam} end`,
        ham_messages: sql<number>`case when ham_messages + ${dHam} < 0 then 0 else ham_messages + ${dHam} end`,
        version: sql<number>`version + 1`,
        updated_at: now,
      })
      .where('id', '=', 1)
      .execute();
  });
  return res;
}

export async function modelVersion(db: Kysely<DB>): Promise<number> {
  const r = await db.selectFrom('bayes_state').select('version').where('id', '=', 1).executeTakeFirst();
  return Number(r?.version ?? 0);
}

/** Reads the whole model into memory. */
export async function loadModel(db: Kysely<DB>): Promise<BayesModel> {
  // Read inside one transaction so the counts and the tokens belong to the same version.
  return db.transaction().execute(async (trx) => {
    const st = await trx.selectFrom('bayes_state').selectAll().where('id', '=', 1).executeTakeFirst();
    const rows = await trx.selectFrom('bayes_tokens').select(['token', 'spam', 'ham']).execute();
    const tokens = new Map<string, TokenCounts>();
    for (const r of rows) tokens.set(r.token, { spam: Math.max(0, Number(r.spam)), ham: Math.max(0, Number(r.ham)) });
    return new BayesModel(tokens, Number(st?.spam_messages ?? 0), Number(st?.ham_messages ?? 0), Number(st?.version ?? 0));
  });
}

/**
 * Holds the current model for the analysis hot path, which never touches the database: the model is loaded at
 * start and reloaded when the store's version moves (another process learned).
 */
export class BayesService {
  private current = new BayesModel();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  /** The model to classify with now. */
  model(): BayesModel {
    return this.current;
  }

  async load(): Promise<void> {
    this.current = await loadModel(this.db);
  }

  /** Reloads when the version changed; returns whether it did. */
  async refresh(): Promise<boolean> {
    if (this.checking) return false;
    this.checking = true;
    try {
      const v = await modelVersion(this.db);
      if (v === this.current.version) return false;
      this.current = await loadModel(this.db);
      return true;
    } catch (err) {
      this.onError(err as Error);
      return false;
    } finally {
      this.checking = false;
    }
  }

  watch(everyMs: number): void {
    this.stop();
    this.timer = setInterval(() => void this.refresh(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** A model source that serves a fixed model (offline evaluation of a model built in memory). */
export function fixedModel(model: BayesModel): { model(): BayesModel } {
  return { model: () => model };
}
