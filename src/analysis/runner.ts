// Runs the checks of one phase concurrently, each under a time budget; a throw or timeout never escapes.
import type { Logger } from '../core/log.ts';
import type { Emit } from '../core/events.ts';
import type { AnalysisServices, Check, Phase, PhaseInput, SymbolHit } from './check.ts';
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
  private byPhase = new Map<Phase, Check[]>();

  constructor(private readonly deps: RunnerDeps) {
    for (const c of deps.checks) {
      const list = this.byPhase.get(c.phase) ?? [];
      list.push(c);
      this.byPhase.set(c.phase, list);
    }
  }

  /** Whether any check runs in this phase (the gateway skips building a phase's input when none does). */
  has(phase: Phase): boolean {
    return this.byPhase.has(phase);
  }

  async run(phase: Phase, input: PhaseInput, ids: { msg_id?: string; conn_id?: string } = {}): Promise<PhaseResult> {
    const checks = this.byPhase.get(phase);
    const result: PhaseResult = { hits: [], mustDefer: false };
    if (!checks) return result;
    await Promise.all(checks.map((c) => this.runOne(c, input, result, ids)));
    return result;
  }

  private async runOne(c: Check, input: PhaseInput, result: PhaseResult, ids: { msg_id?: string; conn_id?: string }): Promise<void> {
    const { scores, log } = this.deps;
    const ms = c.timeoutMs ?? this.deps.timeoutMs;
    let ac: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    const ctx = {
      options: this.deps.options.get(c.name) ?? {},
      services: this.deps.services ?? {},
      log,
      now: this.deps.now ?? Date.now,
      // Made on first use: most checks are synchronous and never look at it.
      get signal() {
        ac ??= new AbortController();
        return ac.signal;
      },
      hit: (symbol: string, opts?: { weight?: number; detail?: string[] }) => {
        if (!(symbol in c.symbols)) throw new Error(`check ${c.name} emitted undeclared symbol ${symbol}`);
        const weight = Math.max(0, Math.min(1, opts?.weight ?? 1));
        result.hits.push({ name: symbol, check: c.name, score: scores.scoreOf(symbol) * weight, weight, detail: opts?.detail });
      },
    };
    try {
      const ran = c.run(input, ctx);
      if (ran && typeof (ran as Promise<void>).then === 'function') {
        await Promise.race([
          ran,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              ac?.abort();
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
