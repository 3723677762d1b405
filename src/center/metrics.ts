// Prometheus metrics at /metrics. Counters follow the event stream through one subscription to the event sink in the
// process that runs the web server (gateway workers forward their events to it, so it sees them all); the analyzer
// runs in a thread with a sink of its own, so its events are read back from the store. Gauges are read from the
// store when scraped, at most every 5 s. Scrapers come without a session: they are let in by address
// (web.metrics.allow), by web.metrics.token, or by an admin's or auditor's credentials.
import net from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { resolveSecret } from '../config/load.ts';
import type { PosternEvent } from '../core/events.ts';
import type { AnalysisThreadStats } from '../analysis/threads.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';
import { bearer } from './auth/guard.ts';

export const METRICS_PATH = '/metrics';
/** Store reads behind the gauges happen at most this often, however often Prometheus scrapes. */
const CACHE_MS = 5_000;
/** How long a scrape waits for the analyzer thread's stats. */
const STATS_TIMEOUT_MS = 1_000;

/** A label value from event data: short, printable, and "unknown" when absent. */
const label = (v: unknown): string => (typeof v === 'string' && v ? v.replace(/[^\w.:@-]/g, '_').slice(0, 64) : 'unknown');

/** Runs `fn` at most once per CACHE_MS; concurrent scrapes share one run. */
function cached<T>(fn: () => Promise<T>): () => Promise<T> {
  let at = 0;
  let value: Promise<T> | undefined;
  return () => {
    const now = Date.now();
    if (!value || now - at >= CACHE_MS) {
      at = now;
      value = fn().catch((err: unknown) => {
        at = 0;
        throw err;
      });
    }
    return value;
  };
}

/** The registry and its metrics; `observe` takes each event of the stream. Exported for tests. */
export function postern(deps: Pick<WebDeps, 'db' | 'sink' | 'analyzer' | 'analysisThreads' | 'spool'>) {
  const { db } = deps;
  const register = new Registry();
  const registers = [register];
  // The process's own figures under their usual names (process_resident_memory_bytes, nodejs_heap_size_used_bytes,
  // nodejs_eventloop_lag_seconds, ...): what a memory or latency alert is written against.
  collectDefaultMetrics({ register });

  const connections = new Counter({ name: 'postern_connections_total', help: 'Client connections by protocol (smtp to the gateway, imap and pop3 to the monitor proxies).', labelNames: ['protocol'], registers });
  const messages = new Counter({
    name: 'postern_messages_total',
    help: 'Messages by the action decided, once per recipient: accepted messages by each recipient\'s action, refused ones as reject or defer.',
    labelNames: ['action'],
    registers,
  });
  const symbols = new Counter({ name: 'postern_symbol_hits_total', help: 'Analysis symbols that fired on accepted messages, by symbol.', labelNames: ['symbol'], registers });
  const delivery = new Histogram({
    name: 'postern_delivery_duration_seconds',
    help: 'Time of one delivery attempt (connect, transfer, reply) by route.',
    labelNames: ['route'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers,
  });
  const relayed = new Counter({ name: 'postern_relay_recipients_total', help: 'Recipients that left the queue by outcome: delivered, deferred (to be tried again), bounced.', labelNames: ['outcome'], registers });
  const sessions = new Counter({ name: 'postern_proxy_sessions_total', help: 'Monitor proxy sessions that ended, by protocol.', labelNames: ['protocol'], registers });
  const open = new Gauge({ name: 'postern_proxy_sessions_open', help: 'Monitor proxy sessions open now, by protocol.', labelNames: ['protocol'], registers });
  const authFailures = new Counter({ name: 'postern_auth_failures_total', help: 'Failed or refused mailbox logins, by protocol.', labelNames: ['protocol'], registers });
  const outbreaks = new Counter({ name: 'postern_outbreaks_declared_total', help: 'Similarity clusters declared outbreaks (the time-zero rule or an admin) since this process started.', registers });
  const quarantined = new Counter({ name: 'postern_quarantined_total', help: 'Copies of messages held in quarantine.', registers });

  // Known label values start at zero, so that a rate over them exists before the first event.
  for (const protocol of ['smtp', 'imap', 'pop3']) connections.inc({ protocol }, 0);
  for (const action of ['accept', 'tag', 'quarantine', 'redirect', 'defer', 'reject']) messages.inc({ action }, 0);
  for (const outcome of ['delivered', 'deferred', 'bounced']) relayed.inc({ outcome }, 0);

  // The analyzer's events, read back from the store: only those after start, so that the counters start at zero.
  let storeCursor = 0;
  let lagFromEvents: number | undefined;
  // Where the tail starts: now, before any event of this run is stored.
  const started = db
    .selectFrom('events')
    .select((eb) => eb.fn.max('id').as('id'))
    .executeTakeFirst()
    .then((r) => {
      storeCursor = Number(r?.id ?? 0);
    });
  started.catch(() => undefined);
  const tail = cached(async () => {
    await started;
    for (;;) {
      const rows = await db
        .selectFrom('events')
        .select(['id', 'type', 'data'])
        .where('id', '>', storeCursor)
        .where('type', 'in', ['outbreak.declared', 'trends.lag'])
        .orderBy('id')
        .limit(5_000)
        .execute();
      for (const r of rows) {
        if (r.type === 'outbreak.declared') outbreaks.inc();
        else lagFromEvents = Number((JSON.parse(r.data) as { lag_ms?: number }).lag_ms ?? 0) / 1000;
      }
      if (rows.length) storeCursor = Number(rows[rows.length - 1].id);
      if (rows.length < 5_000) return;
    }
  });

  const gauges = cached(async () => {
    const [policies, queue, held] = await Promise.all([
      db
        .selectFrom('policies')
        .select(['target_kind', 'action', (eb) => eb.fn.countAll<number>().as('n')])
        .where((eb) => eb.or([eb('pinned', '=', 1), eb('expires_at', 'is', null), eb('expires_at', '>', Date.now())]))
        .groupBy(['target_kind', 'action'])
        .execute(),
      db
        .selectFrom('recipients')
        .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('status', 'in', ['queued', 'deferred'])
        .groupBy('status')
        .execute(),
      db.selectFrom('quarantine').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'held').executeTakeFirst(),
    ]);
    return { policies, queue, held: Number(held?.n ?? 0) };
  });

  new Gauge({
    name: 'postern_policies_active',
    help: 'Live policies in force, by target kind and action.',
    labelNames: ['kind', 'action'],
    registers,
    async collect() {
      this.reset();
      for (const r of (await gauges()).policies) this.set({ kind: r.target_kind, action: r.action }, Number(r.n));
    },
  });
  new Gauge({
    name: 'postern_queue_depth',
    help: 'Recipients waiting in the relay queue, by status: queued (first attempt due) or deferred (waiting for a retry).',
    labelNames: ['status'],
    registers,
    async collect() {
      const rows = (await gauges()).queue;
      for (const status of ['queued', 'deferred']) this.set({ status }, Number(rows.find((r) => r.status === status)?.n ?? 0));
    },
  });
  new Gauge({
    name: 'postern_quarantine_size',
    help: 'Copies held in quarantine now.',
    registers,
    async collect() {
      this.set((await gauges()).held);
    },
  });
  new Gauge({
    name: 'postern_analyzer_lag_seconds',
    help: 'How far the trend analyzer was behind the event stream in its last batch (from its own figures, or its last trends.lag event).',
    registers,
    async collect() {
      const stats = await statsOf(deps.analyzer);
      const lag = stats ? stats.lag_ms / 1000 : lagFromEvents;
      if (lag !== undefined) this.set(lag);
    },
  });
  new Gauge({
    name: 'postern_events_dropped',
    help: 'Events this process could not store since it started (the store far behind, or failing).',
    registers,
    collect() {
      this.set(deps.sink?.dropped ?? 0);
    },
  });
  // A gauge read from one of this process's parts at scrape time; absent from the output when the part is not here.
  const figure = <T>(read: () => T | null | undefined) => (name: string, help: string, pick: (s: T) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const s = read();
        if (s) this.set(pick(s));
      },
    });
  // The spool's segment files (gateway/segments.ts): absent when this process writes a file per message.
  const spoolFigure = figure(() => deps.spool?.());
  spoolFigure('postern_spool_messages', 'Messages in the spool\'s segment files not yet delivered (or not yet known to be; recovery at start sorts them out).', (s) => s.live);
  spoolFigure('postern_spool_segment_files', 'Segment files of the spool.', (s) => s.segments);
  spoolFigure('postern_spool_segment_bytes', 'Bytes in the spool\'s segment files, delivered records included until their file goes.', (s) => s.bytes);
  // The analysis threads (analysis.threads): absent from the output when this process analyses on its event loop.
  const threadFigure = figure<AnalysisThreadStats>(() => deps.analysisThreads?.());
  threadFigure('postern_analysis_threads_running', 'Analysis threads running now (of analysis.threads).', (s) => s.running);
  threadFigure('postern_analysis_pending', 'Messages waiting for or in analysis in the analysis threads.', (s) => s.pending);
  threadFigure('postern_analysis_thread_restarts', 'Analysis threads replaced since start (one died, or overran with a message).', (s) => s.restarts);
  threadFigure('postern_analysis_failed', 'Messages whose analysis failed in a thread since start (answered 451).', (s) => s.failed);
  function observe(e: PosternEvent): void {
    const d = e.data as Record<string, any>;
    switch (e.type) {
      case 'smtp.connect':
        connections.inc({ protocol: 'smtp' });
        break;
      case 'imap.connect':
      case 'pop3.connect': {
        const protocol = e.type.slice(0, 4);
        connections.inc({ protocol });
        open.inc({ protocol });
        break;
      }
      case 'imap.close':
      case 'pop3.close': {
        const protocol = e.type.slice(0, 4);
        sessions.inc({ protocol });
        open.dec({ protocol });
        break;
      }
      case 'message.accepted':
        for (const r of Array.isArray(d.recipients) ? d.recipients : []) messages.inc({ action: label(r?.action) });
        for (const s of Array.isArray(d.symbols) ? d.symbols : []) symbols.inc({ symbol: label(s?.name) });
        break;
      case 'smtp.data.rejected': {
        const n = Array.isArray(d.rcpts) ? d.rcpts.length : 1;
        messages.inc({ action: String(d.reply ?? '').startsWith('4') ? 'defer' : 'reject' }, n || 1);
        break;
      }
      case 'message.quarantined':
        quarantined.inc(Array.isArray(d.rcpts) ? d.rcpts.length : 1);
        break;
      case 'relay.attempt':
        if (typeof d.ms === 'number') delivery.observe({ route: label(d.route) }, d.ms / 1000);
        break;
      case 'relay.delivered':
      case 'relay.deferred':
      case 'relay.bounced':
        relayed.inc({ outcome: e.type.slice(6) }, Array.isArray(d.rcpts) ? d.rcpts.length : 1);
        break;
      case 'auth.failed':
        authFailures.inc({ protocol: label(d.protocol) });
        break;
    }
  }

  /** The metrics in Prometheus' text format, the analyzer's stored events read first. */
  async function scrape(): Promise<string> {
    await tail().catch(() => undefined);
    return register.metrics();
  }

  return { register, observe, scrape };
}

async function statsOf(analyzer: WebDeps['analyzer']): Promise<{ lag_ms: number } | undefined> {
  if (!analyzer) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), STATS_TIMEOUT_MS);
  });
  try {
    return await Promise.race([analyzer.stats().catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Who may scrape: an admin or auditor, the metrics token, or an address in web.metrics.allow. */
export function metricsAccess(config: WebDeps['config']): (req: FastifyRequest) => void {
  const m = config.web.metrics;
  const token = resolveSecret(m.token);
  const want = token ? digest(token) : undefined;
  const allow = new net.BlockList();
  for (const c of m.allow) {
    const [addr, bits] = c.split('/');
    const family = net.isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) allow.addAddress(addr, family);
    else allow.addSubnet(addr, Number(bits), family);
  }
  return (req) => {
    if (req.principal && (req.principal.role === 'admin' || req.principal.role === 'auditor')) return;
    const b = bearer(req);
    if (b && want && timingSafeEqual(digest(b), want)) return;
    if (b) throw new WebError(401, 'unauthorized', 'wrong token for /metrics');
    const ip = req.socket.remoteAddress?.replace(/^::ffff:(?=\d+\.)/i, '') ?? '';
    if (net.isIP(ip) && allow.check(ip, net.isIP(ip) === 6 ? 'ipv6' : 'ipv4')) return;
    throw new WebError(403, 'forbidden', 'this address may not read /metrics (web.metrics.allow); send "Authorization: Bearer <web.metrics.token>"');
  };
}

export const metricsRoute: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const m = postern(deps);
  const off = deps.sink?.subscribe(m.observe);
  app.addHook('onClose', async () => off?.());
  const access = metricsAccess(deps.config);
  app.get(METRICS_PATH, { preHandler: async (req) => access(req) }, async (_req, reply) => {
    return reply.type(m.register.contentType).send(await m.scrape());
  });
};
