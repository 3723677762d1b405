// npm run bench:smtp — loads the gateway over loopback as MX traffic arrives (one message per session, 20 sessions in
// parallel) and, in the same run, Postfix's smtp-sink as the bound. Prints messages/s for each, the ratio, the added
// latency per message at moderate load and the gateway's peak memory.
//
//   npm run bench:smtp -- [--messages 20000] [--sessions 20] [--sizes 4096,65536] [--workers N] [--latency-rate 200]
//                         [--client node] [--extra-config FILE (TOML appended to the gateway's config)]
//                         [--node-args="--cpu-prof --cpu-prof-dir=DIR" (options for the gateway's node)]
//                         [--steps (the gateway's latency step by step)]
//
// The full pipeline is measured: SMTP in, parse, checks, decision, spool fsync, commit, and relay to a downstream
// smtp-sink; a run counts as done when the downstream has every message.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startFixtureDns } from '../test/harness/dns.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    sessions: { type: 'string', default: '20' },
    sizes: { type: 'string', default: '4096,65536' },
    workers: { type: 'string' },
    'latency-rate': { type: 'string', default: '200' },
    'latency-messages': { type: 'string', default: '2000' },
    client: { type: 'string' },
    /** A TOML file appended to the gateway's config, to measure other settings (checks off, other thresholds). */
    'extra-config': { type: 'string' },
    /** Options for the gateway's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where its time goes. */
    'node-args': { type: 'string' },
    /** Print the gateway's latency step by step (greeting, EHLO, MAIL, RCPT, DATA, the message). */
    steps: { type: 'boolean' },
    /** Append the gateway's standard output (its log, and what --node-args=--trace-gc prints) to this file. */
    'gateway-log': { type: 'string' },
  },
});
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const SIZES = values.sizes.split(',').map(Number);
const LAT_RATE = Number(values['latency-rate']);
const LAT_MESSAGES = Number(values['latency-messages']);

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/usr/bin'];
const which = (name: string) => SBIN.map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
const SMTP_SINK = which('smtp-sink');
const SMTP_SOURCE = values.client === 'node' ? undefined : which('smtp-source');
const root = path.resolve(import.meta.dirname, '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function waitPort(port: number, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve();
      });
      s.on('error', () => (Date.now() > end ? reject(new Error(`port ${port} never opened`)) : setTimeout(attempt, 50)));
    };
    attempt();
  });
}

/** smtp-sink with a running counter on stdout; `count()` reads how many messages it has taken. */
async function startSmtpSink(): Promise<{ port: number; proc: ChildProcess; count: () => number; stop: () => void }> {
  if (!SMTP_SINK) throw new Error('smtp-sink not found');
  const port = await freePort();
  const proc = spawn(SMTP_SINK, ['-c', '-u', 'nobody', `127.0.0.1:${port}`, '5000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let n = 0;
  let tail = '';
  proc.stdout!.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-200);
    const all = [...tail.matchAll(/mesg=(\d+)/g)];
    if (all.length) n = Number(all[all.length - 1][1]);
  });
  await waitPort(port);
  return { port, proc, count: () => n, stop: () => proc.kill('SIGKILL') };
}

// ---- load clients -----------------------------------------------------------------------------------------------

function message(size: number, i: number): Buffer {
  const head =
    `From: Bench Sender <sender@bench.example.org>\r\nTo: <rcpt@localhost>\r\nSubject: load test ${i}\r\n` +
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}\r\nMessage-ID: <${i}.${process.pid}.${Date.now()}@bench.example.org>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const line = 'The quick brown fox jumps over the lazy dog, again and again, for the load test.\r\n';
  let body = '';
  while (head.length + body.length + line.length < size) body += line;
  return Buffer.from(head + body + '.\r\n');
}

/** Per-step times of the latency sessions (greeting, EHLO, MAIL, RCPT, DATA, the message), for --steps. */
const STEP_NAMES = ['greeting', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'message'];
let stepTimes: number[][] | null = null;

/** One session: connect, EHLO, MAIL, RCPT, DATA, message, QUIT. Resolves with ms from connect to the 250 after DATA. */

function oneSession(port: number, msg: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let last = t0;
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf = '';
    let step = 0;
    const send = (s: string | Buffer) => sock.write(s);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const m = /^(?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\r?\n/.exec(buf);
        if (!m) return;
        buf = buf.slice(m[0].length);
        const code = Number(m[1]);
        if (stepTimes) {
          const now = performance.now();
          stepTimes[step]?.push(now - last);
          last = now;
        }
        if (code >= 400) {
          sock.destroy();
          return reject(new Error(`step ${step}: ${m[0].trim()}`));
        }
        switch (step++) {
          case 0: send('EHLO bench.example.org\r\n'); break;
          case 1: send('MAIL FROM:<sender@bench.example.org>\r\n'); break;
          case 2: send('RCPT TO:<rcpt@localhost>\r\n'); break;
          case 3: send('DATA\r\n'); break;
          case 4: send(msg); break;
          case 5: {
            const ms = performance.now() - t0;
            send('QUIT\r\n');
            sock.end();
            return resolve(ms);
          }
        }
      }
    });
    sock.on('error', reject);
  });
}

/** Node load client: `sessions` sessions in parallel until `count` messages are sent. */
async function nodeLoad(port: number, size: number, count: number, sessions: number): Promise<void> {
  const msg = message(size, 0);
  let next = 0;
  let failed = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      await oneSession(port, msg).catch(() => failed++);
    }
  };
  await Promise.all(Array.from({ length: sessions }, lane));
  if (failed) console.log(`  (${failed} sessions failed)`);
}

async function load(port: number, size: number, count: number, sessions: number): Promise<number> {
  const t0 = performance.now();
  if (SMTP_SOURCE) {
    // Not spawnSync: the smtp-sink counters are read on this event loop while smtp-source runs.
    const proc = spawn(
      SMTP_SOURCE,
      ['-s', String(sessions), '-m', String(count), '-l', String(size), '-M', 'bench.example.org',
        '-f', 'sender@bench.example.org', '-t', 'rcpt@localhost', `127.0.0.1:${port}`],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    if (code !== 0) throw new Error(`smtp-source exited ${code}`);
  } else {
    await nodeLoad(port, size, count, sessions);
  }
  return performance.now() - t0;
}

/** Paced sessions at `rate` per second; returns each message's time from connect to the 250 after DATA. */
async function latency(port: number, rate: number, count: number): Promise<number[]> {
  const msg = message(4096, 0);
  const out: number[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(oneSession(port, msg).then((ms) => void out.push(ms), () => undefined));
  }
  await Promise.all(pending);
  return out.sort((a, b) => a - b);
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

// ---- the gateway --------------------------------------------------------------------------------------------------

interface Gateway {
  port: number;
  proc: ChildProcess;
  rssPeakMb: () => number;
  stop: () => Promise<void>;
}

function treeRssKb(pid: number): number {
  // Sum over the process and its children (cluster workers).
  let total = 0;
  const walk = (p: number) => {
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const kids = fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(/\s+/) : []) walk(Number(k));
    } catch {
      /* gone */
    }
  };
  walk(pid);
  return total;
}

async function startGateway(downstreamPort: number, workers: number | undefined): Promise<Gateway> {
  const port = await freePort();
  // No network: the auth check's DNS goes to a local server that answers NXDOMAIN at once.
  const dns = await startFixtureDns({});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-bench-'));
  const cfg = path.join(dir, 'postern.toml');
  fs.writeFileSync(
    cfg,
    [
      `data_dir = ${JSON.stringify(path.join(dir, 'data'))}`,
      '[log]',
      'level = "warn"',
      '[gateway]',
      `listen = "127.0.0.1:${port}"`,
      'domains = ["localhost"]',
      ...(workers ? [`workers = ${workers}`] : []),
      '[relay.downstream]',
      'host = "127.0.0.1"',
      `port = ${downstreamPort}`,
      'tls = "none"',
      '[analysis.checks.auth]',
      `dns_servers = [${JSON.stringify(dns.address)}]`,
      // One client address sending thousands of messages a second is a flood by design: the analyzer runs and
      // reads every event, but must not throttle the load it is measured under.
      '[trends.flood]',
      'enabled = false',
    ].join('\n') + '\n' + (values['extra-config'] ? fs.readFileSync(values['extra-config'], 'utf8') : ''),
  );
  // The gateway as `npm start` runs it: from the compiled sources, built first when they are stale.
  spawnSync(process.execPath, [path.join(root, 'scripts/build-dist.mjs'), '--if-stale'], { stdio: 'inherit' });
  const nodeArgs = values['node-args']?.split(' ').filter(Boolean) ?? [];
  const proc = spawn(process.execPath, [...nodeArgs, path.join(root, 'bin/postern.js'), 'start', '--config', cfg], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: dir,
  });
  let out = '';
  const logFile = values['gateway-log'] ? fs.openSync(values['gateway-log'], 'a') : undefined;
  proc.stdout!.on('data', (d: Buffer) => {
    if (out.length < 1_000_000) out += d.toString();
    if (logFile !== undefined) fs.writeSync(logFile, d);
  });
  proc.once('exit', () => logFile !== undefined && fs.closeSync(logFile));
  const end = Date.now() + 30_000;
  while (!/accepting mail/.test(out)) {
    if (Date.now() > end || proc.exitCode !== null) throw new Error(`gateway did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, treeRssKb(proc.pid!))), 100);
  return {
    port,
    proc,
    rssPeakMb: () => Math.round(peak / 1024),
    stop: async () => {
      clearInterval(timer);
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      await dns.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- the run -----------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!SMTP_SINK) {
    console.error("bench:smtp needs Postfix's smtp-sink as the bound (Debian package postfix).");
    process.exit(1);
  }
  console.log(
    `bench:smtp  ${new Date().toISOString()}  ${os.cpus().length} cores  node ${process.version}  client ${SMTP_SOURCE ? 'smtp-source' : 'node'}` +
      `  ${MESSAGES} messages, ${SESSIONS} sessions, one message per session`,
  );
  const rows: string[] = [];
  let rssPeak = 0;
  for (const size of SIZES) {
    const bound = await startSmtpSink();
    await load(bound.port, size, Math.min(MESSAGES, 2000), SESSIONS); // warm-up
    const sinkMs = await load(bound.port, size, MESSAGES, SESSIONS);
    bound.stop();
    const sinkRate = MESSAGES / (sinkMs / 1000);

    const down = await startSmtpSink();
    const gw = await startGateway(down.port, values.workers ? Number(values.workers) : undefined);
    // Warm-up, also makes the loopback source known-good (no greeting pause), as a regular MX peer would be.
    const warm = Math.min(MESSAGES, 2000);
    await load(gw.port, size, warm, SESSIONS);
    while (down.count() < warm) await new Promise((r) => setTimeout(r, 20));
    const before = down.count();
    const t0 = performance.now();
    const acceptMs = await load(gw.port, size, MESSAGES, SESSIONS);
    const deadline = Date.now() + 300_000;
    while (down.count() < before + MESSAGES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const allMs = performance.now() - t0;
    const relayed = down.count() - before;
    rssPeak = Math.max(rssPeak, gw.rssPeakMb());
    await gw.stop();
    down.stop();
    const acceptRate = MESSAGES / (acceptMs / 1000);
    const fullRate = relayed / (allMs / 1000);
    rows.push(
      `${String(size).padStart(6)} B  smtp-sink ${sinkRate.toFixed(0).padStart(6)}/s   postern accepted ${acceptRate.toFixed(0).padStart(5)}/s` +
        `  relayed ${fullRate.toFixed(0).padStart(5)}/s (${relayed}/${MESSAGES})   ratio ${(fullRate / sinkRate).toFixed(3)}`,
    );
    console.log(rows[rows.length - 1]);
  }

  // Added latency at moderate load: the same paced sessions against smtp-sink and against the gateway.
  const bound = await startSmtpSink();
  const sinkLat = await latency(bound.port, LAT_RATE, LAT_MESSAGES);
  bound.stop();
  const down = await startSmtpSink();
  const gw = await startGateway(down.port, values.workers ? Number(values.workers) : undefined);
  await load(gw.port, 4096, 200, SESSIONS);
  if (values.steps) stepTimes = STEP_NAMES.map(() => []);
  const gwLat = await latency(gw.port, LAT_RATE, LAT_MESSAGES);
  if (stepTimes) {
    for (const [i, xs] of stepTimes.entries()) {
      xs.sort((a, b) => a - b);
      console.log(`  ${STEP_NAMES[i].padEnd(8)} p50 ${pct(xs, 50).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms  max ${xs[xs.length - 1]?.toFixed(2)} ms`);
    }
    stepTimes = null;
  }
  rssPeak = Math.max(rssPeak, gw.rssPeakMb());
  await gw.stop();
  down.stop();
  const line = (name: string, xs: number[]) =>
    `${name} p50 ${pct(xs, 50).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms  (${xs.length} messages)`;
  console.log(`latency at ${LAT_RATE} msg/s, 4096 B, connect to 250 after DATA:`);
  console.log(`  ${line('smtp-sink', sinkLat)}`);
  console.log(`  ${line('postern  ', gwLat)}`);
  console.log(`  added p99 ${(pct(gwLat, 99) - pct(sinkLat, 99)).toFixed(2)} ms`);
  console.log(`peak RSS of the gateway (all processes): ${rssPeak} MB`);
}

await main();
