// The analysis after DATA in worker threads (analysis.threads): parsing, the checks and the similarity fingerprint
// are most of a message's CPU, and on the event loop they delay every other session's replies, spool writes and
// relay. Each thread has its own Runner over the built-in checks and its own copy of the classifier's model and
// the learned correspondents; the event loop keeps the sessions, the store's writes, the similarity index and the
// decisions. A thread that dies or overruns is replaced, and its messages get 451 (the client tries again).
import { Worker } from 'node:worker_threads';
import type { LevelWithSilent } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Emit } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { AnalysisRequest, AnalysisResult } from './analyse.ts';
import type { AnalysisWorkerData, FromAnalysis, ToAnalysis } from './thread-main.ts';

export interface AnalysisThreadsOptions {
  count: number;
  config: Config;
  dataDir: string;
  password?: string;
  log: Logger;
  emit: Emit;
  /** Longest a message may wait for its analysis, queueing included; then its thread is replaced. */
  jobTimeoutMs?: number;
}

interface Job {
  resolve(r: AnalysisResult): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Slot {
  n: number;
  worker: Worker | null;
  ready: Promise<void>;
  pending: Map<number, Job>;
  /** Failures in a row without a job done since, for the back-off of restarts. */
  failures: number;
}

export interface AnalysisThreadStats {
  threads: number;
  /** Threads running now. */
  running: number;
  /** Messages waiting for or in analysis. */
  pending: number;
  analysed: number;
  failed: number;
  restarts: number;
}

/** Checks may take check_timeout_ms each, level after level, and a thread's queue is shared by its sessions. */
const MIN_JOB_TIMEOUT_MS = 30_000;
const YOUNG_GENERATION_MB = 16;

export class AnalysisThreads {
  private readonly slots: Slot[];
  private seq = 0;
  private stopping = false;
  private readonly jobTimeoutMs: number;
  private counts = { analysed: 0, failed: 0, restarts: 0 };

  constructor(private readonly opts: AnalysisThreadsOptions) {
    this.jobTimeoutMs = opts.jobTimeoutMs ?? Math.max(MIN_JOB_TIMEOUT_MS, 10 * opts.config.analysis.check_timeout_ms);
    this.slots = Array.from({ length: Math.max(1, opts.count) }, (_, n) => {
      const slot: Slot = { n, worker: null, ready: Promise.resolve(), pending: new Map(), failures: 0 };
      this.spawn(slot);
      return slot;
    });
  }

  /** Resolves when every thread has started (tests and benchmarks; the gateway does not wait for it). */
  async started(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  stats(): AnalysisThreadStats {
    return {
      threads: this.slots.length,
      running: this.slots.filter((s) => s.worker).length,
      pending: this.slots.reduce((n, s) => n + s.pending.size, 0),
      ...this.counts,
    };
  }

  /** Analyses one message in the thread with the fewest messages in hand. */
  analyse = (req: AnalysisRequest): Promise<AnalysisResult> => {
    if (this.stopping) return Promise.reject(new Error('analysis threads are stopping'));
    let slot = this.slots[0];
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    const seq = ++this.seq;
    // One copy of exactly the message's bytes, whose memory then moves to the thread without a second copy.
    const bytes = new Uint8Array(req.raw);
    return new Promise<AnalysisResult>((resolve, reject) => {
      const timer = setTimeout(() => this.replace(slot, `analysis took longer than ${this.jobTimeoutMs} ms`), this.jobTimeoutMs);
      slot.pending.set(seq, { resolve, reject, timer });
      const job: ToAnalysis = { t: 'job', seq, req: { ...req, raw: bytes as Buffer } };
      slot.ready.then(
        () => {
          if (slot.pending.has(seq)) slot.worker?.postMessage(job, [bytes.buffer]);
        },
        () => undefined,
      );
    });
  };

  /** What the outbound listener learned, for every thread's copy of the correspondents. */
  learned(sender: string, external: readonly string[], messageId: string, now: number): void {
    const m: ToAnalysis = { t: 'learned', sender, external: [...external], messageId, now };
    for (const s of this.slots) void s.ready.then(() => s.worker?.postMessage(m)).catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // Messages in analysis get their answer first (the listeners have closed; nothing new comes in).
    const deadline = Date.now() + 5_000;
    while (this.slots.some((s) => s.pending.size) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(
      this.slots.map(async (s) => {
        const w = s.worker;
        if (!w) return;
        const done = new Promise<void>((resolve) => {
          w.once('exit', () => resolve());
          w.on('message', (m: FromAnalysis) => m.t === 'stopped' && resolve());
        });
        w.postMessage({ t: 'stop' } satisfies ToAnalysis);
        await Promise.race([done, new Promise<void>((r) => setTimeout(r, 3_000).unref())]);
        await w.terminate();
        s.worker = null;
      }),
    );
    for (const s of this.slots) this.failAll(s, new Error('analysis threads stopped'));
  }

  private spawn(slot: Slot): void {
    const { opts } = this;
    const data: AnalysisWorkerData = { config: opts.config, dataDir: opts.dataDir, password: opts.password, logLevel: opts.log.level as LevelWithSilent };
    // Compiled (dist/), the thread runs its JavaScript; from the sources, thread.mjs loads them through tsx.
    const entry = import.meta.url.endsWith('.js') ? './thread-main.js' : './thread.mjs';
    // A smaller young generation than the main thread's: a message's parse dies young either way, and the thread's
    // semi-spaces are memory the process holds whether or not mail is coming in.
    const w = new Worker(new URL(entry, import.meta.url), { workerData: data, name: `analysis-${slot.n}`, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    slot.worker = w;
    let ready = false;
    slot.ready = new Promise<void>((resolve, reject) => {
      w.on('message', (m: FromAnalysis) => {
        if (m.t === 'ready') {
          ready = true;
          resolve();
        } else if (m.t === 'done' || m.t === 'failed') {
          const job = slot.pending.get(m.seq);
          if (!job) return;
          slot.pending.delete(m.seq);
          clearTimeout(job.timer);
          if (m.t === 'done') {
            slot.failures = 0;
            this.counts.analysed++;
            job.resolve(m.result);
          } else {
            this.counts.failed++;
            job.reject(new Error(m.error));
          }
        } else if (m.t === 'event') opts.emit(m.type, m.fields);
      });
      w.on('error', (err) => {
        opts.log.error({ err, thread: slot.n }, 'analysis thread failed');
        if (!ready) reject(err);
      });
      w.on('exit', (code) => {
        if (slot.worker !== w) return;
        slot.worker = null;
        if (!ready) reject(new Error(`analysis thread exited with ${code} before it started`));
        this.failAll(slot, new Error(`analysis thread exited with ${code}`));
        if (this.stopping) return;
        this.restart(slot);
      });
    });
    // Rejections are answered through the jobs; an unhandled one must not take the process down.
    slot.ready.catch(() => undefined);
  }

  /** A thread stuck in one message (or gone): the messages it holds get 451, and a new thread takes its place. */
  private replace(slot: Slot, why: string): void {
    const w = slot.worker;
    this.opts.log.error({ thread: slot.n, pending: slot.pending.size }, `${why}: replacing the analysis thread`);
    this.failAll(slot, new Error(why));
    if (!w) return;
    slot.worker = null;
    void w.terminate();
    if (!this.stopping) this.restart(slot);
  }

  private restart(slot: Slot): void {
    this.counts.restarts++;
    slot.failures++;
    // At once the first time; a thread that keeps dying waits longer each time, up to 5 s.
    const delay = Math.min(5_000, slot.failures > 1 ? 100 * 2 ** slot.failures : 0);
    let started!: () => void;
    slot.ready = new Promise<void>((r) => (started = r));
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn(slot);
      slot.ready.then(started, () => undefined);
    }, delay).unref();
  }

  private failAll(slot: Slot, err: Error): void {
    for (const [seq, job] of slot.pending) {
      clearTimeout(job.timer);
      slot.pending.delete(seq);
      this.counts.failed++;
      job.reject(err);
    }
  }
}
