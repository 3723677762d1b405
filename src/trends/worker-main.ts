// The trend analyzer inside its worker thread: its own store connection, its own event sink for its findings, and
// messages to the thread that started it (policy changes, stats).
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { LevelWithSilent } from 'pino';
import { createLogger } from '../core/log.ts';
import { openStore } from '../store/db.ts';
import { EventSink } from '../matrix/sink.ts';
import { Analyzer } from './analyzer.ts';
import { lead } from './leader.ts';
import type { PolicyChange } from '../matrix/live.ts';

export interface AnalyzerWorkerData {
  config: Config;
  dataDir: string;
  password?: string;
  logLevel: LevelWithSilent;
}

export type ToAnalyzer = { t: 'stop' } | { t: 'stats'; seq: number } | { t: 'drain'; seq: number } | { t: 'settings' };
export type FromAnalyzer =
  | { t: 'ready' }
  | { t: 'policy'; op: PolicyChange['op']; id: string }
  | { t: 'stats'; seq: number; stats: Analyzer['stats'] }
  | { t: 'stopped' };

const data = workerData as AnalyzerWorkerData;
const port = parentPort!;
const log = createLogger(data.logLevel).child({ component: 'trends' });
const store = await openStore({ url: data.config.store.url, dataDir: data.dataDir, password: data.password });
const sink = new EventSink(store, log);
const abort = new AbortController();
// On a shared PostgreSQL store only one node's analyzer leads; this thread waits until it does.
const leading = lead(data.config.store.url, data.password, log, abort.signal);
const analyzer = new Analyzer({
  db: store.db,
  dialect: store.dialect,
  // SQLite: the hot reads and writes run as prepared statements on the store's handle.
  sqlite: store.sqlite,
  config: data.config,
  log,
  emit: sink.emit,
  onPolicy: (c) => port.postMessage({ t: 'policy', ...c } satisfies FromAnalyzer),
});
port.postMessage({ t: 'ready' } satisfies FromAnalyzer);
const leadership = leading.then(async (l) => {
  if (l) await analyzer.start();
  return l;
});
port.on('message', (m: ToAnalyzer) => {
  if (m.t === 'settings') analyzer.settingsChanged();
  if (m.t === 'stats') port.postMessage({ t: 'stats', seq: m.seq, stats: analyzer.stats } satisfies FromAnalyzer);
  if (m.t === 'drain') {
    void leadership.then(() => analyzer.drain()).then(() => port.postMessage({ t: 'stats', seq: m.seq, stats: analyzer.stats } satisfies FromAnalyzer));
  }
  if (m.t === 'stop') {
    void (async () => {
      abort.abort();
      await analyzer.stop();
      await (await leadership)?.release();
      await sink.flush();
      await store.close();
      port.postMessage({ t: 'stopped' } satisfies FromAnalyzer);
      port.close();
    })();
  }
});
