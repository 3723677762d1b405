// Starts the trend analyzer in a worker thread of this process and talks to it: policy changes come back to be
// fanned out to the gateways; stats and drain answer tests, benchmarks and the center.
import { Worker } from 'node:worker_threads';
import type { LevelWithSilent } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { PolicyChange } from '../matrix/live.ts';
import type { AnalyzerStats } from './analyzer.ts';
import type { AnalyzerWorkerData, FromAnalyzer, ToAnalyzer } from './worker-main.ts';

export interface AnalyzerThread {
  stats(): Promise<AnalyzerStats>;
  /** Analyses everything stored so far, then answers its stats. */
  drain(): Promise<AnalyzerStats>;
  /** The detector settings changed in the center: read them before the next step. */
  settingsChanged(): void;
  stop(): Promise<void>;
}

const RESTART_MS = 2_000;

export function startAnalyzerThread(opts: {
  config: Config;
  dataDir: string;
  password?: string;
  log: Logger;
  onPolicy(change: PolicyChange): void;
}): AnalyzerThread {
  let seq = 0;
  const waiting = new Map<number, (s: AnalyzerStats) => void>();
  let stopping = false;
  let worker!: Worker;
  let stopped: (() => void) | undefined;
  let started = false;

  const spawn = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const data: AnalyzerWorkerData = {
        config: opts.config,
        dataDir: opts.dataDir,
        password: opts.password,
        logLevel: opts.log.level as LevelWithSilent,
      };
      // Compiled (dist/), the thread runs its JavaScript; from the sources, worker.mjs loads them through tsx.
      const entry = import.meta.url.endsWith('.js') ? './worker-main.js' : './worker.mjs';
      // The analyzer reads events in batches every few hundred milliseconds and keeps its windows in the old
      // generation; a small young generation is enough, and the default's semi-spaces would be memory held for nothing.
      const w = new Worker(new URL(entry, import.meta.url), { workerData: data, name: 'trends', resourceLimits: { maxYoungGenerationSizeMb: 8 } });
      worker = w;
      let ready = false;
      w.on('message', (m: FromAnalyzer) => {
        if (m.t === 'ready') {
          ready = true;
          started = true;
          resolve();
        } else if (m.t === 'policy') opts.onPolicy({ op: m.op, id: m.id });
        else if (m.t === 'stats') {
          waiting.get(m.seq)?.(m.stats);
          waiting.delete(m.seq);
        } else if (m.t === 'stopped') stopped?.();
      });
      w.on('error', (err) => {
        opts.log.error({ err }, 'trend analyzer failed');
        if (!ready) reject(err);
      });
      w.on('exit', (code) => {
        if (stopping) {
          stopped?.();
          return;
        }
        if (!ready) return;
        opts.log.error({ code }, `trend analyzer exited; restarting in ${RESTART_MS / 1000} s`);
        setTimeout(() => void spawn().catch((err: Error) => opts.log.error({ err }, 'trend analyzer restart failed')), RESTART_MS).unref();
      });
    });

  // The thread compiles and opens its store in the background: Postern accepts mail meanwhile, and the analyzer
  // catches up from its cursor once it runs.
  const ready = spawn();
  ready.catch((err: Error) => opts.log.error({ err }, 'trend analyzer did not start'));
  const ask = async (t: 'stats' | 'drain'): Promise<AnalyzerStats> => {
    await ready;
    return new Promise((resolve) => {
      const s = ++seq;
      waiting.set(s, resolve);
      worker.postMessage({ t, seq: s } satisfies ToAnalyzer);
    });
  };

  return {
    stats: () => ask('stats'),
    drain: () => ask('drain'),
    settingsChanged() {
      void ready.then(() => worker.postMessage({ t: 'settings' } satisfies ToAnalyzer)).catch(() => undefined);
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      // Not running yet (still compiling or opening the store): nothing to finish, so end the thread at once.
      if (!started) {
        await worker.terminate();
        return;
      }
      const done = new Promise<void>((r) => (stopped = r));
      worker.postMessage({ t: 'stop' } satisfies ToAnalyzer);
      const timeout = new Promise<void>((r) => setTimeout(r, 5_000).unref());
      await Promise.race([done, timeout]);
      await worker.terminate();
    },
  };
}
