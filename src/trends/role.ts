// `postern start --role analyzer`: the trend analyzer as its own process, beside gateways on other hosts that share
// the PostgreSQL store and Redis. It waits for the leader lock, then analyses; policy changes go out on the bus.
import type { LoadedConfig } from '../config/load.ts';
import { resolveSecret } from '../config/load.ts';
import { createLogger } from '../core/log.ts';
import { openStore } from '../store/db.ts';
import { EventSink } from '../matrix/sink.ts';
import { openLive } from '../matrix/open-live.ts';
import { Analyzer } from './analyzer.ts';
import { lead } from './leader.ts';

export async function runAnalyzerRole(loaded: LoadedConfig): Promise<number> {
  const { config, dataDir } = loaded;
  const log = createLogger(config.log.level).child({ component: 'trends' });
  const password = resolveSecret(config.store.password);
  const store = await openStore({ url: config.store.url, dataDir, password });
  const sink = new EventSink(store, log);
  const live = await openLive(config, { onError: (err) => log.warn({ err: err.message }, 'policy bus failing') });
  const abort = new AbortController();
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      abort.abort();
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const leadership = await lead(config.store.url, password, log, abort.signal);
  let analyzer: Analyzer | undefined;
  if (leadership) {
    analyzer = new Analyzer({ db: store.db, dialect: store.dialect, config, log, emit: sink.emit, onPolicy: (c) => void live.bus.publish(c).catch(() => undefined) });
    await analyzer.start();
    const a = analyzer;
    live.bus.subscribe((change) => change.op === 'settings' && a.settingsChanged());
    console.log(`Postern analyzer is following the events of ${store.dialect === 'postgres' ? 'the PostgreSQL store' : dataDir}`);
  }
  await stopped;
  await analyzer?.stop();
  await leadership?.release();
  await sink.flush();
  await live.close();
  await store.close();
  return 0;
}
