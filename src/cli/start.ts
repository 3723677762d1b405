// postern start: runs every role until SIGINT/SIGTERM. With gateway.workers > 1 the SMTP gateway runs in that
// many worker processes sharing the listening socket, and this process keeps the relay and the store's upkeep.
import cluster from 'node:cluster';
import { startPostern, type Postern } from '../app.ts';
import { args, load } from './common.ts';
import { RemoteRows, broadcastPolicies, followPolicies, forwardEvents, serveWorker, type ToPrimary } from '../cluster/ipc.ts';
import { runAnalyzerRole } from '../trends/role.ts';

function waitForSignal(app: Postern, onStop?: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info({ signal: sig }, 'shutting down');
      void (onStop ? onStop() : Promise.resolve())
        .then(() => app.close())
        .then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

export async function runStart(argv: string[]): Promise<number> {
  const { values } = args(argv, { role: { type: 'string' } });
  if (cluster.isWorker) return runWorker(values.config);
  const role = values.role ?? 'all';
  if (role !== 'all' && role !== 'analyzer') {
    console.error(`postern: --role must be "all" or "analyzer", not "${role}"`);
    return 64;
  }
  const loaded = load(values.config, role === 'all');
  if (role === 'analyzer') return runAnalyzerRole(loaded);
  const workers = loaded.config.gateway.workers;
  if (workers <= 1) {
    const app = await startPostern(loaded);
    console.log(`Postern is accepting mail on ${app.smtp.host}:${app.smtp.port} (config ${loaded.file}, data in ${app.dataDir})`);
    if (app.web) console.log(`Quarantine pages and API at ${app.web.url} (listening on ${app.web.host}:${app.web.port})`);
    await waitForSignal(app);
    return 0;
  }
  // The relay recovers the spool before any worker can write to it.
  const app = await startPostern(loaded, {
    roles: { gateway: false, relay: true },
    onPolicyChange: (what) => broadcastPolicies(Object.values(cluster.workers ?? {}), what),
  });
  if (app.web) console.log(`Quarantine pages and API at ${app.web.url} (listening on ${app.web.host}:${app.web.port})`);
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ args: ['start', '--config', loaded.file] });
  let ready = 0;
  let stopping = false;
  const fork = () => {
    const w = cluster.fork({ POSTERN_WORKER: '1' });
    serveWorker(app, w, (smtp) => {
      if (++ready === workers) {
        console.log(`Postern is accepting mail on ${smtp} with ${workers} workers (config ${loaded.file}, data in ${app.dataDir})`);
      }
    });
  };
  // A signal reaches the workers too; one that exits first must not be replaced while we stop.
  const markStopping = () => {
    stopping = true;
  };
  process.prependOnceListener('SIGINT', markStopping);
  process.prependOnceListener('SIGTERM', markStopping);
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    app.log.error({ worker: w.process.pid, code, signal }, 'gateway worker exited; starting another');
    setTimeout(() => {
      if (!stopping) fork();
    }, 1000).unref();
  });
  for (let i = 0; i < workers; i++) fork();
  await waitForSignal(app, async () => {
    await Promise.all(
      Object.values(cluster.workers ?? {}).map(
        (w) =>
          new Promise<void>((r) => {
            if (!w || w.isDead()) return r();
            w.once('exit', () => r());
            w.process.kill('SIGTERM');
          }),
      ),
    );
  });
  return 0;
}

async function runWorker(configFile: string | undefined): Promise<number> {
  const loaded = load(configFile);
  const app = await startPostern(loaded, {
    roles: { gateway: true, relay: false },
    rows: new RemoteRows(),
    forwardEvents,
    // The primary hands each message to its relay once the rows are durable.
    onAccepted: () => undefined,
  });
  followPolicies(app);
  process.send?.({ t: 'listening', smtp: `${app.smtp.host}:${app.smtp.port}` } satisfies ToPrimary);
  // Without the primary there is no store to commit to. Sessions mid-DATA get no reply (their spool files stay for
  // the next start's recovery), and exiting at once frees the listening socket for a restarted primary.
  process.once('disconnect', () => {
    app.log.error('the primary process is gone; the worker stops');
    process.exit(1);
  });
  await waitForSignal(app);
  return 0;
}
