// npm run bench:matrix — the data matrix under load: the events/s that EventSink gets durably into the store, and how
// far the trend analyzer (in its worker thread, as under `postern start`) lags behind that stream. On SQLite (a temp
// file opened as openStore opens it: WAL) and on PostgreSQL (127.0.0.1:5432, db test, a fresh schema).
//
//   npm run bench:matrix -- [--seconds 5] [--lag-seconds 10] [--no-postgres]
//
// Events are the mix the gateway emits per message, with the shapes of gateway/server.ts, gateway/phases/data.ts and
// relay/queue.ts: connect, helo, mail, two recipients accepted and one refused as unknown, the message with its
// symbols and recipients, the relay attempt and delivery, the close. Ingest emits them as fast as the process can for
// the given time, yielding to the event loop between messages as the gateway does, then flushes and makes them
// durable; the rate counts from the first emit to the last event durably stored. The lag part emits the same mix at a
// fixed rate and samples the analyzer's position every 100 ms. Each message comes from an address of its own, 256 in a
// row from one /24, each with one unknown recipient: below every per-address threshold, but the distributed-harvest
// rule fires once per /24 (and flood once for example.net, every sender's domain), so the analyzer also writes
// policies as it would under attack. The logger is silent: log output is not the load.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PG_URL, freshPgSchema } from '../test/harness/postern.ts';
import { openStore, type StoreDb } from '../src/store/db.ts';
import { EventSink } from '../src/matrix/sink.ts';
import { silentLogger } from '../src/core/log.ts';
import type { Emit } from '../src/core/events.ts';
import { configSchema } from '../src/config/schema.ts';
import { startAnalyzerThread, type AnalyzerThread } from '../src/trends/thread.ts';
import { analyzedTypes, type AnalyzerStats } from '../src/trends/analyzer.ts';
import { allDetectors } from '../src/trends/detectors/index.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, 'lag-seconds': { type: 'string', default: '10' }, 'no-postgres': { type: 'boolean' } },
});
const SECONDS = Number(values.seconds);
const LAG_SECONDS = Number(values['lag-seconds']);
const TARGET = 50_000;
/** The analyzer's lag target at TARGET events/s. */
const LAG_TARGET_MS = 1_000;
/** About what bench:smtp's full pipeline produces: 500 messages/s of about 10 events each. */
const SMTP_RATE = 5_000;

const f = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** One inbound message's events, as the gateway and the relay emit them. */
function message(emit: Emit, n: number): void {
  const ip = `198.51.${(n >> 8) & 255}.${n & 255}`;
  const conn_id = `C${n.toString(36).padStart(8, '0')}`;
  const msg_id = `M${n.toString(36).padStart(12, '0')}`;
  const from = `sender${n % 5000}@example.net`;
  const helo = `mail${n % 700}.example.net`;
  const at = { ip, conn_id };
  emit('smtp.connect', { ...at, data: { class: 'unknown', pause_ms: 0, symbols: undefined } });
  emit('smtp.helo', { ...at, data: { helo, symbols: [] } });
  emit('smtp.mail', { ...at, data: { from, size: 4096 } });
  emit('smtp.rcpt.accepted', { ...at, data: { rcpt: 'alice@example.org', from, symbols: undefined } });
  emit('smtp.rcpt.accepted', { ...at, data: { rcpt: 'bob@example.org', from, symbols: undefined } });
  emit('smtp.rcpt.rejected', { ...at, data: { rcpt: `nobody${n % 97}@example.org`, from, reason: 'unknown_recipient', reply: '550 5.1.1', helo } });
  const symbols = [
    { name: 'SPF_PASS', check: 'auth', score: -0.1, weight: 1 },
    { name: 'DKIM_VALID', check: 'auth', score: -0.1, weight: 1 },
    { name: 'HEADER_DATE_FUTURE', check: 'headers', score: 1.2, weight: 1, detail: ['+3h'] },
    { name: 'BAYES_HAM', check: 'bayes', score: -1, weight: 0.8, detail: ['0.03'] },
  ];
  const recipients = ['alice@example.org', 'bob@example.org'].map((rcpt) => ({ rcpt, action: 'accept', because: [], policies: [] }));
  emit('message.accepted', {
    ...at,
    msg_id,
    data: { from, message_id: `<${msg_id}@example.net>`, subject: `Quarterly report ${n}`, size: 4096, score: 0, symbols, analysis_ms: 1.7, recipients },
  });
  const results = recipients.map((r) => ({ rcpt: r.rcpt, deliver_to: r.rcpt, result: 'delivered', response: '250 2.0.0 Ok: queued' }));
  emit('relay.attempt', { msg_id, data: { route: 'downstream', host: '127.0.0.1:2525', ms: 3, results } });
  emit('relay.delivered', { msg_id, data: { rcpts: recipients.map((r) => r.rcpt) } });
  emit('smtp.close', { ...at, data: { duration_ms: 41, messages: 1, refused: 1, protocol_errors: 0, helo } });
}

const EVENTS_PER_MESSAGE = 10;

interface Ingested {
  events: number;
  ms: number;
  perSecond: number;
  dropped: number;
}

/** Emits the gateway's event mix for `seconds`, then flushes; returns events durably stored per second. */
async function ingest(store: StoreDb, seconds: number): Promise<Ingested> {
  // No cap on the buffer: a drop would be counted as ingested and flatter the figure.
  const sink = new EventSink(store, silentLogger, { maxBuffer: Number.MAX_SAFE_INTEGER });
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    // 20 messages, then the event loop turns (timers included: the sink's flush runs on one), as between sessions.
    for (let i = 0; i < 20; i++) message(sink.emit, n++);
    await new Promise((r) => setImmediate(r));
  }
  await sink.flush();
  await store.durable();
  const ms = performance.now() - t0;
  const stored = Number((await store.db.selectFrom('events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const emitted = n * EVENTS_PER_MESSAGE;
  if (stored !== emitted - sink.dropped) throw new Error(`stored ${stored} events of ${emitted} emitted (${sink.dropped} dropped)`);
  return { events: stored, ms, perSecond: (stored / ms) * 1000, dropped: sink.dropped };
}

function report(name: string, r: Ingested, target?: number): void {
  const vs = target ? `, ${f(r.perSecond / target, 2)} of the target ${f(target)}/s` : '';
  console.log(`${name}: ${f(r.perSecond)} events/s (${f(r.events)} events in ${f(r.ms / 1000, 1)} s including the final flush${r.dropped ? `, ${r.dropped} dropped` : ''})${vs}`);
}

interface Lagged {
  rate: number;
  /** Events emitted per second as paced (below `rate` if the main thread could not keep the pace). */
  sentPerSecond: number;
  /** now − time of the newest event analysed, sampled every SAMPLE_MS from the first emit until caught up. */
  lag: { p50: number; p99: number; max: number };
  /** Events the analyzer read per second from the first emit to catching up (it reads 7 of each message's 10). */
  analyzedPerSecond: number;
  /** Share of that time the analyzer spent in its steps, and what it analysed per second of them: its capacity. */
  busy: number;
  capacityPerSecond: number;
  /** From the end of emitting until the cursor reached the last event the analyzer reads; null: not within CATCH_UP_MS. */
  catchUpMs: number | null;
  findings: number;
  policies: number;
}

const SLICE_MS = 10;
const SAMPLE_MS = 100;
const CATCH_UP_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the analyzer's worker thread on the store as `postern start` does, emits the gateway's event mix at `rate`
 * events/s for `seconds` through an EventSink on this thread, and measures how far the analyzer stays behind.
 */
async function lag(store: StoreDb, url: string, dataDir: string, rate: number, seconds: number): Promise<Lagged> {
  const config = configSchema.parse({ data_dir: dataDir, store: { url }, log: { level: 'silent' } });
  let policies = 0;
  const thread: AnalyzerThread = await startAnalyzerThread({ config, dataDir, log: silentLogger, onPolicy: () => policies++ });
  try {
    await thread.drain(); // started (and, on PostgreSQL, leading) before the first event
    const sink = new EventSink(store, silentLogger, { maxBuffer: Number.MAX_SAFE_INTEGER });
    const samples: number[] = [];
    const wall0 = Date.now();
    const sampler = setInterval(() => void thread.stats().then((s) => samples.push(Date.now() - (s.last_ts || wall0))), SAMPLE_MS);
    const perSecond = rate / EVENTS_PER_MESSAGE;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    let n = 0;
    for (let now = t0; now < end; now = performance.now()) {
      const due = Math.floor(((now - t0) / 1000) * perSecond);
      while (n < due) message(sink.emit, n++);
      await sleep(SLICE_MS - ((performance.now() - t0) % SLICE_MS));
    }
    const stopped = performance.now();
    await sink.flush();
    const types = analyzedTypes(allDetectors(config));
    const last = await store.db.selectFrom('events').select((eb) => eb.fn.max('id').as('id')).where('type', 'in', types).executeTakeFirstOrThrow();
    let s: AnalyzerStats = await thread.stats();
    while (s.cursor < Number(last.id) && performance.now() - stopped < CATCH_UP_MS) {
      await sleep(10);
      s = await thread.stats();
    }
    const done = performance.now();
    clearInterval(sampler);
    const caughtUp = s.cursor >= Number(last.id);
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
    return {
      rate,
      sentPerSecond: ((n * EVENTS_PER_MESSAGE) / (stopped - t0)) * 1000,
      lag: { p50: q(0.5), p99: q(0.99), max: samples[samples.length - 1] },
      analyzedPerSecond: (s.events / (done - t0)) * 1000,
      busy: s.busy_ms / (done - t0),
      capacityPerSecond: (s.events / s.busy_ms) * 1000,
      catchUpMs: caughtUp ? done - stopped : null,
      findings: s.findings,
      policies,
    };
  } finally {
    await thread.stop();
  }
}

function reportLag(name: string, r: Lagged): void {
  const ms = (x: number) => `${f(x)} ms`;
  const kept = r.catchUpMs === null ? `no: not caught up ${CATCH_UP_MS / 1000} s after emitting stopped` : `${r.catchUpMs <= LAG_TARGET_MS ? 'yes' : 'no'}: at the last event ${ms(r.catchUpMs)} after emitting stopped`;
  console.log(
    `${name} at ${f(r.rate)} events/s (sent ${f(r.sentPerSecond)}/s): lag p50 ${ms(r.lag.p50)}, p99 ${ms(r.lag.p99)}, max ${ms(r.lag.max)} ` +
      `(max ${f(r.lag.max / LAG_TARGET_MS, 2)} of the target ${ms(LAG_TARGET_MS)}); kept up ${kept}\n` +
      `  analyzed ${f(r.analyzedPerSecond)} events/s, busy ${f(r.busy * 100)}% of the time (${f(r.capacityPerSecond)} events/s while busy); ` +
      `${f(r.findings)} findings, ${f(r.policies)} policy changes`,
  );
}

/** Runs `fn` on a fresh store in a temp directory, opened as openStore opens it. */
async function onSqlite<T>(fn: (s: StoreDb, url: string, dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-bench-matrix-'));
  try {
    const s = await openStore({ url: '', dataDir: dir });
    try {
      return await fn(s, '', dir);
    } finally {
      await s.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` on a fresh schema of the test database, dropped afterwards. */
async function onPostgres<T>(fn: (s: StoreDb, url: string, dir: string) => Promise<T>): Promise<T> {
  const pg = await freshPgSchema();
  try {
    const s = await openStore({ url: pg.url, dataDir: os.tmpdir() });
    try {
      return await fn(s, pg.url, os.tmpdir());
    } finally {
      await s.close();
    }
  } finally {
    await pg.drop();
  }
}

function listening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

async function main(): Promise<void> {
  console.log(`ingest through EventSink, ${SECONDS} s per store, ${EVENTS_PER_MESSAGE} events per message`);
  report('SQLite (WAL)', await onSqlite((s) => ingest(s, SECONDS)), TARGET);
  const postgres = !values['no-postgres'] && (await listening(5432));
  if (postgres) report('PostgreSQL', await onPostgres((s) => ingest(s, SECONDS)));
  else if (!values['no-postgres']) console.log(`PostgreSQL: skipped, nothing listens on 127.0.0.1:5432 (${PG_URL})`);

  console.log(`\nanalyzer lag (worker thread), ${LAG_SECONDS} s per rate, sampled every ${SAMPLE_MS} ms`);
  for (const rate of [TARGET, SMTP_RATE]) reportLag('SQLite (WAL)', await onSqlite((s, url, dir) => lag(s, url, dir, rate, LAG_SECONDS)));
  if (postgres) {
    for (const rate of [TARGET, SMTP_RATE]) reportLag('PostgreSQL', await onPostgres((s, url, dir) => lag(s, url, dir, rate, LAG_SECONDS)));
  }
}

await main();
