// Runs the checks of one phase concurrently, each under a time budget; a throw or timeout never escapes.
import type { Logger } from '../core/log.ts';
import type { Emit } from '../core/events.ts';
import type { AnalysisServices, Check, CheckContext, Phase, PhaseInput, SymbolHit } from './check.ts';
import type { ScoreTable } from './scoring.ts';

export interface RunnerDeps {
  checks: readonly Check[];
  /** Parsed options per check name (defaults applied). */
  options: ReadonlyMap<string, unknown>;
  scores: ScoreTable;
  timeoutMs: number;
  log: Logger;
  emit?: Emit;
  now?: () => number;
  /** Shared services (the classifier's model, …); none when left out. */
  services?: AnalysisServices;
}

export interface PhaseResult {
  hits: SymbolHit[];
  /** Set when a check with onError 'defer' failed: the caller answers 451 4.3.0. */
  mustDefer: boolean;
}

export class Runner {
  /** Per phase, levels of checks: each level runs concurrently, after the levels before it (see `after`). */
  private byPhase = new Map<Phase, Check[][]>();

  constructor(private readonly deps: RunnerDeps) {
    const phases = new Map<Phase, Check[]>();
    for (const c of deps.checks) {
      const list = phases.get(c.phase) ?? [];
      list.push(c);
      phases.set(c.phase, list);
    }
    for (const [phase, list] of phases) this.byPhase.set(phase, levels(list));
  }

  /** Whether any check runs in this phase (the gateway skips building a phase's input when none does). */
  has(phase: Phase): boolean {
    return this.byPhase.has(phase);
  }

  async run(phase: Phase, input: PhaseInput, ids: { msg_id?: string; conn_id?: string } = {}): Promise<PhaseResult> {
    const byLevel = this.byPhase.get(phase);
    const result: PhaseResult = { hits: [], mustDefer: false };
    if (!byLevel) return result;
    for (const checks of byLevel) await Promise.all(checks.map((c) => this.runOne(c, input, result, ids)));
    return result;
  }

  private async runOne(c: Check, input: PhaseInput, result: PhaseResult, ids: { msg_id?: string; conn_id?: string }): Promise<void> {
    const { log } = this.deps;
    const ms = c.timeoutMs ?? this.deps.timeoutMs;
    const ctx = new RunContext(c, this.deps, result);
    let timer: NodeJS.Timeout | undefined;
    try {
      const ran = c.run(input, ctx);
      if (ran && typeof (ran as Promise<void>).then === 'function') {
        await Promise.race([
          ran,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              ctx.abort();
              reject(new Error(`timed out after ${ms} ms`));
            }, ms);
          }),
        ]);
      }
    } catch (err) {
      const message = (err as Error).message;
      log.warn({ check: c.name, err: message }, 'check failed');
      this.deps.emit?.('check.failed', { ...ids, data: { check: c.name, error: message, on_error: c.onError } });
      result.hits.push({ name: 'CHECK_FAILED', check: c.name, score: 0, weight: 0, detail: [c.name, message] });
      if (c.onError === 'defer') result.mustDefer = true;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}

/**
 * Orders one phase's checks into levels by their `after` lists: a check runs in the level after the last of the
 * checks it names. A name that is not in this phase (a check left out of the registry, or disabled by an embedding
 * program) is ignored; a cycle is a programming error.
 */
function levels(checks: readonly Check[]): Check[][] {
  const level = new Map<string, number>();
  const byName = new Map(checks.map((c) => [c.name, c]));
  const visit = (c: Check, path: readonly string[]): number => {
    const known = level.get(c.name);
    if (known !== undefined) return known;
    if (path.includes(c.name)) throw new Error(`checks depend on each other in a cycle: ${[...path, c.name].join(' → ')}`);
    let l = 0;
    for (const dep of c.after ?? []) {
      const d = byName.get(dep);
      if (d) l = Math.max(l, visit(d, [...path, c.name]) + 1);
    }
    level.set(c.name, l);
    return l;
  };
  const out: Check[][] = [];
  for (const c of checks) (out[visit(c, [])] ??= []).push(c);
  return out.filter(Boolean);
}

/**
 * What one check sees while it runs on one message. A class, not an object of closures: one is made per check and
 * message, and its methods are shared.
 */
class RunContext implements CheckContext<string, unknown> {
  readonly options: Readonly<unknown>;
  readonly services: Readonly<AnalysisServices>;
  readonly log: Logger;
  readonly now: () => number;
  private ac: AbortController | undefined;
  private aborted = false;

  constructor(
    private readonly check: Check,
    private readonly deps: RunnerDeps,
    private readonly result: PhaseResult,
  ) {
    this.options = (deps.options.get(check.name) ?? {}) as Readonly<unknown>;
    this.services = deps.services ?? {};
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    // Checks pass ctx.hit on as a plain function.
    this.hit = this.hit.bind(this);
  }

  /** Made on first use (most checks never look at it), already aborted when the check's time ran out before. */
  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.aborted) this.ac.abort();
    }
    return this.ac.signal;
  }

  abort(): void {
    this.aborted = true;
    this.ac?.abort();
  }

  saw(symbol: string): SymbolHit | undefined {
    const after = this.check.after;
    if (!after) return undefined;
    return this.result.hits.find((h) => h.name === symbol && after.includes(h.check));
  }

  hit(symbol: string, opts?: { weight?: number; detail?: string[] }): void {
    const c = this.check;
    if (!(symbol in c.symbols)) throw new Error(`check ${c.name} emitted undeclared symbol ${symbol}`);
    const weight = Math.max(0, Math.min(1, opts?.weight ?? 1));
    this.result.hits.push({ name: symbol, check: c.name, score: this.deps.scores.scoreOf(symbol) * weight, weight, detail: opts?.detail });
  }
}
