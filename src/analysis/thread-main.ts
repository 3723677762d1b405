// One analysis thread (analysis/threads.ts starts them): its own store connection for the classifier's model and
// the learned correspondents, its own Runner over the built-in checks, and messages to and from the event loop.
import { parentPort, workerData } from 'node:worker_threads';
import type { LevelWithSilent } from 'pino';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../core/log.ts';
import type { Emit, EventType } from '../core/events.ts';
import { openStore } from '../store/db.ts';
import { loadAnalysisServices } from './services.ts';
import { CHECKS } from './checks/index.ts';
import { checkOptions } from './registry-options.ts';
import { parseLimitsOf } from './mime-scan.ts';
import { Runner } from './runner.ts';
import { ScoreTable } from './scoring.ts';
import { analyseMessage, type AnalysisRequest, type AnalysisResult } from './analyse.ts';

export interface AnalysisWorkerData {
  config: Config;
  dataDir: string;
  password?: string;
  logLevel: LevelWithSilent;
}

export type ToAnalysis =
  | { t: 'job'; seq: number; req: AnalysisRequest }
  | { t: 'learned'; sender: string; external: string[]; messageId: string; now: number }
  | { t: 'stop' };
export type FromAnalysis =
  | { t: 'ready' }
  | { t: 'done'; seq: number; result: AnalysisResult }
  | { t: 'failed'; seq: number; error: string }
  | { t: 'event'; type: EventType; fields: Parameters<Emit>[1] }
  | { t: 'stopped' };

const data = workerData as AnalysisWorkerData;
const port = parentPort!;
const { config } = data;
const log = createLogger(data.logLevel).child({ component: 'analysis' });
const store = await openStore({ url: config.store.url, dataDir: data.dataDir, password: data.password });
const options = checkOptions(config.analysis.checks);
// What the event loop's outbound listener learns comes at once as 'learned'; the store is read for other nodes'.
const services = await loadAnalysisServices(store.db, config, options, log, { classify: true });
const { correspondents } = services;
const emit: Emit = (type, fields) => port.postMessage({ t: 'event', type, fields } satisfies FromAnalysis);
const runner = new Runner({
  checks: CHECKS,
  options,
  scores: new ScoreTable(CHECKS, config.analysis.scores),
  timeoutMs: config.analysis.check_timeout_ms,
  log,
  emit,
  services: { bayes: services.bayes, correspondents },
});
const limits = parseLimitsOf(config.analysis.parse);

port.on('message', (m: ToAnalysis) => {
  if (m.t === 'job') {
    // The bytes arrive as a Uint8Array (a copy); a Buffer over the same memory is what the parser expects.
    const raw = Buffer.from(m.req.raw.buffer, m.req.raw.byteOffset, m.req.raw.byteLength);
    analyseMessage(runner, limits, { ...m.req, raw }).then(
      (result) => port.postMessage({ t: 'done', seq: m.seq, result } satisfies FromAnalysis),
      (err: Error) => port.postMessage({ t: 'failed', seq: m.seq, error: err.message } satisfies FromAnalysis),
    );
  } else if (m.t === 'learned') correspondents.learn(m.sender, m.external, m.messageId, m.now);
  else if (m.t === 'stop') {
    void (async () => {
      services.stop();
      await store.close();
      port.postMessage({ t: 'stopped' } satisfies FromAnalysis);
      port.close();
    })();
  }
});
port.postMessage({ t: 'ready' } satisfies FromAnalysis);
