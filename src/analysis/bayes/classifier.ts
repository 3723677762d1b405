// The in-memory token model and Robinson–Fisher chi-square combining (Robinson 2003; SpamBayes' chi2_spamprob).
import { createHash } from 'node:crypto';

export type BayesClass = 'spam' | 'ham';

/** Tuning of the combining step; the defaults are SpamBayes' published ones. */
export interface ClassifierParams {
  /** Robinson's s: how strongly the unknown-word probability x pulls rare tokens toward it. */
  unknownWordStrength: number;
  /** Robinson's x: the probability of a token never seen. */
  unknownWordProb: number;
  /** Tokens whose probability is within this of 0.5 are not clues. */
  minimumProbStrength: number;
  /** At most this many clues (the strongest) are combined. */
  maxDiscriminators: number;
}

export const DEFAULT_PARAMS: ClassifierParams = {
  unknownWordStrength: 0.45,
  unknownWordProb: 0.5,
  minimumProbStrength: 0.2,
  maxDiscriminators: 150,
};

export interface TokenCounts {
  spam: number;
  ham: number;
}

export interface Classification {
  /** 0 (ham) … 1 (spam). */
  prob: number;
  /** Number of tokens that were combined. */
  clues: number;
  /** The strongest clues, for explanations: token and its probability. */
  top: [string, number][];
}

/** P(chi² with v degrees of freedom ≥ x2), for even v (SpamBayes chi2Q). */
export function chi2Q(x2: number, v: number): number {
  const m = x2 / 2;
  let sum = Math.exp(-m);
  let term = sum;
  for (let i = 1; i < v / 2; i++) {
    term *= m / i;
    sum += term;
  }
  return Math.min(sum, 1);
}

/** Token counts per class and message counts; classification is pure arithmetic on these, no I/O. */
export class BayesModel {
  /**
   * Every token strong enough to be a clue, with the logarithms the combining step adds up: made once per model
   * (on load and after each reload), so that a message costs one look-up per token and no arithmetic for the
   * tokens that are not clues. Built on first use; a model is never changed after it is made.
   */
  private clueTable?: { index: Map<string, number>; prob: Float64Array; lnHam: Float64Array; lnSpam: Float64Array };

  constructor(
    readonly tokens: ReadonlyMap<string, TokenCounts> = new Map(),
    readonly spamMessages = 0,
    readonly hamMessages = 0,
    readonly version = 0,
    readonly params: ClassifierParams = DEFAULT_PARAMS,
  ) {}

  /** Robinson's f(w): the token's spam probability, pulled toward x by how little it was seen. */
  tokenProb(c: TokenCounts): number {
    const ns = Math.max(this.spamMessages, 1);
    const nh = Math.max(this.hamMessages, 1);
    const s = Math.max(0, c.spam);
    const h = Math.max(0, c.ham);
    const spamRatio = s / ns;
    const hamRatio = h / nh;
    if (s + h === 0) return this.params.unknownWordProb;
    // Evidence counted as if both classes had as many messages as the smaller one: a token seen in 20 of 700
    // ham and none of 110 spam is less certain than its raw count says, since the spam sample is small.
    const small = Math.min(ns, nh);
    const n = (s * small) / ns + (h * small) / nh;
    const p = spamRatio / (spamRatio + hamRatio);
    const { unknownWordStrength: S, unknownWordProb: x } = this.params;
    return (S * x + n * p) / (S + n);
  }

  private clues(): NonNullable<BayesModel['clueTable']> {
    if (this.clueTable) return this.clueTable;
    const min = this.params.minimumProbStrength;
    const index = new Map<string, number>();
    const probs: number[] = [];
    for (const [t, c] of this.tokens) {
      const p = this.tokenProb(c);
      if (Math.abs(p - 0.5) >= min) {
        index.set(t, probs.length);
        probs.push(p);
      }
    }
    const prob = Float64Array.from(probs);
    const lnHam = new Float64Array(prob.length);
    const lnSpam = new Float64Array(prob.length);
    for (let i = 0; i < prob.length; i++) {
      // Clamp away from 0 and 1 so one token cannot make a logarithm infinite.
      const q = Math.min(Math.max(prob[i], 1e-6), 1 - 1e-6);
      lnHam[i] = Math.log(q);
      lnSpam[i] = Math.log(1 - q);
    }
    this.clueTable = { index, prob, lnHam, lnSpam };
    return this.clueTable;
  }

  classify(tokens: readonly string[]): Classification {
    const { index, prob, lnHam, lnSpam } = this.clues();
    // The clues in the message's token order: each one's row in the table and its token.
    const ids: number[] = [];
    const names: string[] = [];
    for (const t of tokens) {
      const i = index.get(t);
      if (i === undefined) continue;
      ids.push(i);
      names.push(t);
    }
    const strength = (k: number) => Math.abs(prob[ids[k]] - 0.5);
    let use = ids.map((_, k) => k);
    if (use.length > this.params.maxDiscriminators) {
      // Strongest first; equal strength broken by token so the result does not depend on input order.
      use.sort((a, b) => strength(b) - strength(a) || (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
      use = use.slice(0, this.params.maxDiscriminators);
    }
    const n = use.length;
    if (n === 0) return { prob: 0.5, clues: 0, top: [] };
    let lnH = 0;
    let lnS = 0;
    for (const k of use) {
      lnH += lnHam[ids[k]];
      lnS += lnSpam[ids[k]];
    }
    const S = 1 - chi2Q(-2 * lnS, 2 * n);
    const H = 1 - chi2Q(-2 * lnH, 2 * n);
    // The five strongest clues for the symbol's detail, by insertion into a short list; ties keep the earlier clue.
    const best: number[] = [];
    for (const k of use) {
      let at = best.length;
      while (at > 0 && strength(best[at - 1]) < strength(k)) at--;
      if (at < 5) {
        best.splice(at, 0, k);
        if (best.length > 5) best.pop();
      }
    }
    const top = best.map((k) => [names[k], Math.round(prob[ids[k]] * 1000) / 1000] as [string, number]);
    return { prob: (S - H + 1) / 2, clues: n, top };
  }
}

/**
 * The identity of a message for learning: the body and the headers its author wrote (From, To, Date, Subject,
 * Message-ID), not the trace headers added in transit, so the same message learned from a file and from the
 * quarantine is the same message.
 */
export function messageDigest(raw: Buffer, headerBytes: number, header: (name: string) => string | undefined): string {
  const h = createHash('sha256');
  for (const n of ['from', 'to', 'date', 'subject', 'message-id']) h.update(`${n}:${(header(n) ?? '').trim()}\n`);
  // Line ends as stored (LF in a file, CRLF on the wire) do not make another message.
  if (headerBytes >= 0) h.update(raw.subarray(headerBytes).toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  return h.digest('hex');
}

/** A model counted in memory from learning records (tests, fixtures); the store's learnBatch is the real path. */
export function modelFromItems(items: Iterable<{ cls: BayesClass; tokens: readonly string[] }>, params: ClassifierParams = DEFAULT_PARAMS): BayesModel {
  const tokens = new Map<string, TokenCounts>();
  let spam = 0;
  let ham = 0;
  for (const it of items) {
    if (it.cls === 'spam') spam++;
    else ham++;
    for (const t of it.tokens) {
      let c = tokens.get(t);
      if (!c) tokens.set(t, (c = { spam: 0, ham: 0 }));
      c[it.cls]++;
    }
  }
  return new BayesModel(tokens, spam, ham, 0, params);
}
