// npm run bench:scan — the content analysis alone, on the development corpus (SpamAssassin's easy-ham-1, hard-ham-1
// and spam-1; never the reserved -2 folders), in one process: messages/s and MB/s per core of CPU, p50/p99 per
// message, peak RSS. In the same run, when Debian's rspamd is installed, the same messages go to an rspamd normal
// worker over HTTP and its CPU per message is measured the same way, for the ratio.
//
//   npm run bench:scan -- [--limit N] [--no-peer] [--rounds 2] [--cpu-prof FILE]
//
// Both sides run with no network: DNS goes to a local responder that answers every name with NXDOMAIN at once, so
// a check that asks DNS costs its CPU, not a timeout. The responder runs in a child process, so that its own CPU is
// not counted as the analysis's (rspamd's side is measured on its worker alone the same way). The classifier is
// trained on the train half of the corpus first (as npm run eval:corpus does), so it does its full work per message.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import inspector from 'node:inspector';
import { parseArgs } from 'node:util';
import { startFixtureDns } from '../test/harness/dns.ts';
import { parseConfigText } from '../src/config/load.ts';
import { openStore } from '../src/store/db.ts';
import { learnAll } from '../src/analysis/bayes/learn.ts';
import { fixedModel, loadModel } from '../src/analysis/bayes/store.ts';
import { OfflineScanner } from '../src/analysis/offline.ts';
import { CHECKS } from '../src/analysis/checks/index.ts';
import { corpus, isTrain, readCorpusItem } from '../scripts/corpus.ts';
import type { BayesClass } from '../src/analysis/bayes/classifier.ts';

const { values } = parseArgs({
  options: {
    limit: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    'no-peer': { type: 'boolean' },
    concurrency: { type: 'string', default: '16' },
    // A V8 CPU profile of the timed scan only (not training or warm-up), written to this file.
    'cpu-prof': { type: 'string' },
    // Internal: run only the NXDOMAIN responder, print its port, and live until stdin closes.
    'dns-child': { type: 'boolean' },
  },
});
const ROUNDS = Math.max(1, Number(values.rounds));
interface Msg {
  name: string;
  cls: BayesClass;
  raw: Buffer;
}

function messages(): Msg[] {
  const out = corpus().map((it) => ({ name: it.name, cls: it.cls, raw: readCorpusItem(it) }));
  return values.limit ? out.slice(0, Number(values.limit)) : out;
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;
const f = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** A DNS responder for "no network": an empty zone, so NXDOMAIN for every question, at once. */
async function nxdomainServer(): Promise<{ port: number; close(): void }> {
  const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, '--dns-child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`DNS responder exited with ${code}`)));
  });
  return { port, close: () => void child.kill() };
}

async function dnsChild(): Promise<void> {
  const d = await startFixtureDns({});
  process.stdout.write(`${d.port}\n`);
  process.stdin.resume();
  process.stdin.once('end', () => process.exit(0));
}

/** Starts the in-process V8 profiler; stop() returns the profile (the format --cpu-prof writes). */
async function startProfile(): Promise<{ stop(): Promise<object> }> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<any>((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  return {
    async stop() {
      const { profile } = await post('Profiler.stop');
      session.disconnect();
      return profile;
    },
  };
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 1048576;
}

async function scanPostern(msgs: Msg[], dnsPort: number): Promise<{ cpuMs: number; wallMs: number; lat: number[]; bytes: number; spam: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-bench-scan-'));
  const auth = CHECKS.some((c) => c.name === 'auth');
  const config = parseConfigText(auth ? `[analysis.checks.auth]\ndns_servers = ["127.0.0.1:${dnsPort}"]\n` : '', 'bench.toml');
  const store = await openStore({ url: '', dataDir: dir });
  try {
    const train = msgs.filter((m) => isTrain(m));
    await learnAll(store.db, train.map((m) => ({ raw: m.raw, cls: m.cls })));
    const scanner = new OfflineScanner({ config, services: { bayes: fixedModel(await loadModel(store.db)) } });
    // Warm-up: JIT and lazy module loading are not what a running gateway pays per message.
    for (const m of msgs.slice(0, 200)) await scanner.scan(m.raw);
    const lat: number[] = [];
    let bytes = 0;
    let spam = 0;
    const profiler = values['cpu-prof'] ? await startProfile() : undefined;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let r = 0; r < ROUNDS; r++) {
      for (const m of msgs) {
        const t = performance.now();
        const res = await scanner.scan(m.raw);
        lat.push(performance.now() - t);
        bytes += m.raw.length;
        if (r === 0 && res.spam) spam++;
      }
    }
    const wallMs = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (profiler) fs.writeFileSync(values['cpu-prof']!, JSON.stringify(await profiler.stop()));
    return { cpuMs: (c.user + c.system) / 1000, wallMs, lat: lat.sort((a, b) => a - b), bytes, spam };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- rspamd ----------------------------------------------------------------------------------------------------

function cpuOfPids(pids: number[]): number {
  let ticks = 0;
  for (const p of pids) {
    try {
      const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return (ticks * 1000) / 100;
}

function rspamdPids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', 'rspamd: normal'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function startRspamd(dnsPort: number): Promise<{ port: number; stop(): void } | null> {
  const bin = ['/usr/bin/rspamd', '/usr/sbin/rspamd'].find((p) => fs.existsSync(p));
  if (!bin) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-bench-rspamd-'));
  for (const d of ['db', 'run', 'log', 'local/local.d']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const w = (name: string, text: string) => fs.writeFileSync(path.join(dir, 'local/local.d', name), text);
  // One normal worker: its CPU per message is per core.
  w('worker-normal.inc', `bind_socket = "127.0.0.1:${port}";\ncount = 1;\n`);
  w('worker-controller.inc', `bind_socket = "127.0.0.1:${port + 1}";\n`);
  w('worker-proxy.inc', `bind_socket = "127.0.0.1:${port + 2}";\n`);
  w('options.inc', `dns { nameserver = ["127.0.0.1:${dnsPort}"]; timeout = 1s; retransmits = 1; }\n`);
  fs.chmodSync(dir, 0o755);
  for (const d of ['db', 'run', 'log']) fs.chmodSync(path.join(dir, d), 0o777);
  const user = process.getuid?.() === 0 ? ['-u', '_rspamd', '-g', '_rspamd'] : [];
  const proc: ChildProcess = spawn(
    bin,
    ['-f', ...user, '-c', '/etc/rspamd/rspamd.conf', `--var=DBDIR=${dir}/db`, `--var=RUNDIR=${dir}/run`, `--var=LOGDIR=${dir}/log`, `--var=LOCAL_CONFDIR=${dir}/local`],
    { stdio: 'ignore', detached: true },
  );
  const stop = () => {
    try {
      process.kill(-proc.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    setTimeout(() => fs.rmSync(dir, { recursive: true, force: true }), 500).unref();
  };
  const end = Date.now() + 120_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      http.get({ host: '127.0.0.1', port, path: '/ping' }, (res) => r(res.statusCode === 200)).on('error', () => r(false));
    });
    if (ok) return { port, stop };
    if (Date.now() > end || proc.exitCode !== null) {
      stop();
      return null;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function scanRspamd(port: number, msgs: Msg[], concurrency: number): Promise<{ cpuMs: number; wallMs: number; lat: number[]; spam: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const check = (m: Msg) =>
    new Promise<{ ms: number; spam: boolean }>((resolve, reject) => {
      const t = performance.now();
      const req = http.request(
        { host: '127.0.0.1', port, path: '/checkv2', method: 'POST', agent, headers: { IP: '203.0.113.25', Helo: 'mail.example.org', 'Content-Length': m.raw.length } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => {
            const score = (JSON.parse(body) as { score?: number }).score ?? 0;
            resolve({ ms: performance.now() - t, spam: score >= 6 });
          });
        },
      );
      req.on('error', reject);
      req.end(m.raw);
    });
  for (const m of msgs.slice(0, 200)) await check(m);
  const pids = rspamdPids();
  const c0 = cpuOfPids(pids);
  const t0 = performance.now();
  const lat: number[] = [];
  let spam = 0;
  let next = 0;
  const total = msgs.length * ROUNDS;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const r = await check(msgs[i % msgs.length]);
        lat.push(r.ms);
        if (i < msgs.length && r.spam) spam++;
      }
    }),
  );
  const wallMs = performance.now() - t0;
  agent.destroy();
  return { cpuMs: cpuOfPids(pids) - c0, wallMs, lat: lat.sort((a, b) => a - b), spam };
}

async function main(): Promise<void> {
  const msgs = messages();
  const mb = msgs.reduce((n, m) => n + m.raw.length, 0) / 1048576;
  console.log(
    `bench:scan  ${new Date().toISOString()}  ${os.cpus().length} cores  node ${process.version}  ${msgs.length} messages (${f(mb)} MB) × ${ROUNDS} rounds, easy-ham-1 + hard-ham-1 + spam-1`,
  );
  const dns = await nxdomainServer();
  try {
    const p = await scanPostern(msgs, dns.port);
    const n = msgs.length * ROUNDS;
    const perCore = n / (p.cpuMs / 1000);
    console.log(
      `  postern  ${f(perCore, 0)} msg/s per core (${f(p.cpuMs / n, 2)} ms CPU/msg), ${f((p.bytes / 1048576) / (p.cpuMs / 1000))} MB/s per core, ` +
        `wall ${f(n / (p.wallMs / 1000), 0)} msg/s, p50 ${f(pct(p.lat, 50), 2)} ms, p99 ${f(pct(p.lat, 99), 2)} ms, peak RSS ${f(peakRssMb(), 0)} MB, ` +
        `${p.spam} of ${msgs.length} at quarantine or above`,
    );
    if (values['no-peer']) return;
    const r = await startRspamd(dns.port);
    if (!r) {
      console.log('  rspamd   not measured: no rspamd binary (apt-get install rspamd) or it did not start');
      return;
    }
    try {
      const q = await scanRspamd(r.port, msgs, Number(values.concurrency));
      const rPerCore = n / (q.cpuMs / 1000);
      console.log(
        `  rspamd   ${f(rPerCore, 0)} msg/s per core (${f(q.cpuMs / n, 2)} ms CPU/msg, normal worker), wall ${f(n / (q.wallMs / 1000), 0)} msg/s ` +
          `from ${values.concurrency} connections, p50 ${f(pct(q.lat, 50), 2)} ms, p99 ${f(pct(q.lat, 99), 2)} ms (its wall time includes waits for DNS answers and timeouts of its network modules; CPU is the comparison)`,
      );
      console.log(`  ratio    postern/rspamd per core ${f(perCore / rPerCore, 2)}`);
    } finally {
      r.stop();
    }
  } finally {
    dns.close();
  }
}

if (values['dns-child']) await dnsChild();
else {
  await main();
  process.exit(0);
}
