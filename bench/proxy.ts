// npm run bench:proxy — the IMAP and POP3 monitor proxies against Dovecot itself, in one run: the latency each
// proxy adds to small commands, bulk transfer (FETCH of a whole mailbox, RETR of every message) and login time,
// each measured direct to Dovecot and through Postern, interleaved so that both paths share the machine's noise.
//
//   npm run bench:proxy -- [--messages 2000] [--rounds 5] [--samples 200] [--logins 20] [--json]
//
// A private Dovecot (test/harness/dovecot.ts) gets one mailbox filled over LMTP with `messages` messages of sizes
// like real mail (most 2–20 KB, one in twenty about 200 KB with an attachment); Postern runs in this process with
// both proxies in front of it. The client runs in a child process, as a real client would be elsewhere: a client on
// Postern's event loop would be charged to the proxy. Each round: `samples` of each small command on each path, one
// bulk FETCH (raw, and through imapflow) and one RETR of every message per path, then `logins` logins per path.
// Postern's CPU time is read around each transfer through it (less what it spends anyway, read around the direct
// ones), so that what the proxy costs shows even when the rates are set by the rest of the machine.
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { startDovecot, type Dovecot } from '../test/harness/dovecot.ts';
import { startTestPostern, type TestPostern } from '../test/harness/postern.ts';
import { rng } from '../src/similarity/fixtures.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    /** Of each small command per path and round. */
    samples: { type: 'string', default: '200' },
    /** Logins per protocol, path and round. */
    logins: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
    /** Internal: run as the measuring client with these ports (JSON). */
    client: { type: 'string' },
  },
});

const USER = 'bench@localhost';
const PASSWORD = 'Bench-Pass-42';
const TARGET = { addedP50Ms: 1, addedP99Ms: 5, fetchRatio: 0.8 };

interface Ports {
  imap: { direct: number; proxy: number };
  pop3: { direct: number; proxy: number };
  messages: number;
  rounds: number;
  samples: number;
  logins: number;
}
type Path = 'direct' | 'proxy';
const PATHS: readonly Path[] = ['direct', 'proxy'];

// ---- a raw connection -------------------------------------------------------------------------------------------

/** Takes chunks until the answer is complete, then returns it (or a summary of it). */
type Take = (d: Buffer) => string | undefined;

/** One socket read with as little work as possible: each answer is handed to a `Take` until it says it is complete. */
class Conn {
  private queue: Buffer[] = [];
  private take: Take | null = null;
  private done: ((s: string) => void) | null = null;
  private failed: ((e: Error) => void) | null = null;
  /** Octets read so far. */
  received = 0;

  private constructor(readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      if (this.take) this.feed(d);
      else this.queue.push(d);
    });
    sock.on('close', () => this.failed?.(new Error('connection closed')));
    sock.on('error', (e) => this.failed?.(e));
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1' }, () => resolve(new Conn(sock)));
      sock.once('error', reject);
    });
  }

  read(take: Take): Promise<string> {
    return new Promise((resolve, reject) => {
      this.take = take;
      this.done = resolve;
      this.failed = reject;
      while (this.waiting() && this.queue.length) this.feed(this.queue.shift()!);
    });
  }

  /** Whether an answer is still being read (the chunks already queued may have completed it). */
  private waiting(): boolean {
    return this.take !== null;
  }

  send(s: string | Buffer, take: Take): Promise<string> {
    this.sock.write(s);
    return this.read(take);
  }

  private feed(d: Buffer): void {
    let r: string | undefined;
    try {
      r = this.take!(d);
    } catch (err) {
      const failed = this.failed!;
      this.take = this.done = this.failed = null;
      return failed(err as Error);
    }
    if (r === undefined) return;
    const done = this.done!;
    this.take = this.done = this.failed = null;
    done(r);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** An IMAP answer through its tagged line (the answers read this way carry no literals). */
function tagged(tag: string): Take {
  let buf = '';
  return (d: Buffer) => {
    buf += d.toString('latin1');
    if (!buf.endsWith('\r\n')) return undefined;
    const start = buf.lastIndexOf('\n', buf.length - 3) + 1;
    return buf.startsWith(`${tag} `, start) ? buf : undefined;
  };
}
/** One line (a greeting, a POP3 status line). */
const line = (): Take => {
  let buf = '';
  return (d: Buffer) => {
    buf += d.toString('latin1');
    return buf.includes('\r\n') ? buf : undefined;
  };
};

/** An IMAP FETCH answer with literals: skips each literal unread, ends at the tagged line. */
function fetchAnswer(tag: string): Take {
  let literal = 0;
  let held: Buffer[] = [];
  return (d: Buffer) => {
    let pos = 0;
    while (pos < d.length) {
      if (literal) {
        const n = Math.min(literal, d.length - pos);
        literal -= n;
        pos += n;
        continue;
      }
      const lf = d.indexOf(0x0a, pos);
      if (lf < 0) {
        held.push(d.subarray(pos));
        return undefined;
      }
      const piece = d.subarray(pos, lf + 1);
      pos = lf + 1;
      const l = held.length ? Buffer.concat([...held, piece]) : piece;
      held = [];
      const m = /\{(\d+)\}\r\n$/.exec(l.toString('latin1', Math.max(0, l.length - 24)));
      if (m) literal = Number(m[1]);
      else if (l.toString('latin1', 0, tag.length + 1) === `${tag} `) return l.toString('latin1');
    }
    return undefined;
  };
}

const END = Buffer.from('\r\n.\r\n');

/** A POP3 multi-line answer: the status line, and for +OK the body through its `.` line. */
function multiAnswer(): Take {
  let carry: Buffer = Buffer.alloc(0);
  let first = true;
  return (d: Buffer) => {
    if (first && d[0] === 0x2d) return d.toString('latin1');
    first = false;
    if (carry.length && Buffer.concat([carry, d.subarray(0, 4)]).includes(END)) return '+OK';
    if (d.includes(END)) return '+OK';
    carry = d.length >= 4 ? d.subarray(d.length - 4) : Buffer.concat([carry, d]).subarray(-4);
    return undefined;
  };
}

const expectOk = (what: string, answer: string, ok: RegExp) => {
  if (!ok.test(answer)) throw new Error(`${what}: ${answer.slice(-300)}`);
  return answer;
};

// ---- the mailbox ------------------------------------------------------------------------------------------------

const WORDS = (
  'the of and to in a is that for it as with was on be by this are from at or have not which you we our your will ' +
  'meeting report figures quarter budget invoice project team schedule please attached review thanks regards draft ' +
  'customer order delivery contract update agenda minutes proposal approval deadline office travel account'
).split(' ');

function textOf(r: () => number, size: number): string {
  const lines: string[] = [];
  let n = 0;
  while (n < size) {
    let l = '';
    while (l.length < 60 + r() * 14) l += (l ? ' ' : '') + WORDS[Math.floor(r() * WORDS.length)];
    lines.push(l);
    n += l.length + 2;
  }
  return lines.join('\r\n') + '\r\n';
}

function base64Of(r: () => number, size: number): string {
  const bytes = Buffer.alloc(Math.ceil((size * 3) / 4));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  return bytes.toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n';
}

/** Message `i`: mostly 2–20 KB of text (log-uniform), one in twenty 150–250 KB with a base64 attachment. */
function benchMessage(i: number, r: () => number): Buffer {
  const big = r() < 0.05;
  const size = big ? 150_000 + r() * 100_000 : 2_000 * 10 ** r();
  const head =
    `Received: from mail.example.org (mail.example.org [192.0.2.25])\r\n\tby mx.localhost with ESMTPS id ${i.toString(36)}; Mon, 30 Nov 2026 10:00:00 +0000\r\n` +
    `From: Carol Example <carol@example.org>\r\nTo: Bench <${USER}>\r\nSubject: ${textOf(r, 1).slice(0, 50).trim()} ${i}\r\n` +
    `Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench-${i}@example.org>\r\nMIME-Version: 1.0\r\n`;
  if (!big) return Buffer.from(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${textOf(r, size - head.length - 50)}`, 'latin1');
  const b = `b-${i}`;
  return Buffer.from(
    `${head}Content-Type: multipart/mixed; boundary="${b}"\r\n\r\n--${b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${textOf(r, 1_500)}` +
      `--${b}\r\nContent-Type: application/pdf; name="report-${i}.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Of(r, size - head.length - 1_800)}--${b}--\r\n`,
    'latin1',
  );
}

/** SMTP/LMTP replies: resolves after `n` final reply lines; a 4xx or 5xx throws. */
function smtpReplies(n: number): Take {
  let buf = '';
  return (d: Buffer) => {
    buf += d.toString('latin1');
    const finals = buf.match(/^\d{3}(?: [^\n]*)?\r?\n/gm) ?? [];
    if (finals.length < n) return undefined;
    if (finals.some((l) => l[0] === '4' || l[0] === '5')) throw new Error(`LMTP: ${buf.trim()}`);
    return buf;
  };
}

/** Delivers the messages over LMTP, one transaction each (MAIL, RCPT and DATA pipelined). */
async function deliver(port: number, messages: Buffer[]): Promise<void> {
  const c = await Conn.open(port);
  await c.read(smtpReplies(1));
  await c.send('LHLO bench.example.org\r\n', smtpReplies(1));
  for (const m of messages) {
    await c.send(`MAIL FROM:<carol@example.org>\r\nRCPT TO:<${USER}>\r\nDATA\r\n`, smtpReplies(3));
    const body = m.toString('latin1').replace(/^\./gm, '..');
    await c.send(Buffer.from(`${body}.\r\n`, 'latin1'), smtpReplies(1));
  }
  await c.send('QUIT\r\n', smtpReplies(1));
  c.close();
}

// ---- the measuring client (a child process) ----------------------------------------------------------------------

interface Quantiles {
  n: number;
  p50: number;
  p99: number;
}
type Transfer = 'fetch' | 'imapflow' | 'pop3';
/** From the client to Postern's process: a transfer through the proxy starts or ends (Postern reads its CPU time). */
type Mark = { start: Transfer; path: Path } | { end: Transfer; path: Path; bytes: number };

/** Tells Postern's process and waits for its answer, so that its CPU reading is taken before the transfer starts. */
function mark(m: Mark): Promise<void> {
  return new Promise((resolve) => {
    process.once('message', () => resolve());
    process.send!(m);
  });
}

interface ClientResult {
  wireBytes: { fetch: number; pop3: number };
  latency: Record<string, Record<Path, Quantiles>>;
  /** MB/s per round. */
  throughput: Record<Transfer, Record<Path, number[]>>;
  login: Record<'imap' | 'pop3', Record<Path, Quantiles>>;
  /** Postern's CPU time per MB relayed (set by Postern's process). */
  posternMsPerMb?: Record<Transfer, number>;
}

const quantiles = (xs: number[]): Quantiles => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  return { n: s.length, p50: at(0.5), p99: at(0.99) };
};
const median = (xs: number[]) => quantiles(xs).p50;

async function imapSession(port: number): Promise<Conn> {
  const c = await Conn.open(port);
  expectOk('greeting', await c.read(line()), /^\* OK/);
  expectOk('login', await c.send(`l LOGIN ${USER} ${PASSWORD}\r\n`, tagged('l')), /^l OK/m);
  expectOk('select', await c.send('s SELECT INBOX\r\n', tagged('s')), /^s OK/m);
  return c;
}

async function pop3Session(port: number): Promise<Conn> {
  const c = await Conn.open(port);
  expectOk('greeting', await c.read(line()), /^\+OK/);
  expectOk('user', await c.send(`USER ${USER}\r\n`, line()), /^\+OK/);
  expectOk('pass', await c.send(`PASS ${PASSWORD}\r\n`, line()), /^\+OK/);
  return c;
}

async function imapflow(port: number): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user: USER, pass: PASSWORD }, logger: false });
  await c.connect();
  await c.mailboxOpen('INBOX', { readOnly: true });
  return c;
}

/** ms from connect to the login's OK. */
async function imapLogin(port: number): Promise<number> {
  const t0 = performance.now();
  const c = await Conn.open(port);
  await c.read(line());
  expectOk('login', await c.send(`a LOGIN ${USER} ${PASSWORD}\r\n`, tagged('a')), /^a OK/m);
  const ms = performance.now() - t0;
  await c.send('b LOGOUT\r\n', tagged('b'));
  c.close();
  return ms;
}

async function pop3Login(port: number): Promise<number> {
  const t0 = performance.now();
  const c = await Conn.open(port);
  await c.read(line());
  await c.send(`USER ${USER}\r\n`, line());
  expectOk('pass', await c.send(`PASS ${PASSWORD}\r\n`, line()), /^\+OK/);
  const ms = performance.now() - t0;
  await c.send('QUIT\r\n', line());
  c.close();
  return ms;
}

async function runClient(p: Ports): Promise<ClientResult> {
  const r = rng(7);
  const imap = { direct: await imapSession(p.imap.direct), proxy: await imapSession(p.imap.proxy) };
  const pop3 = { direct: await pop3Session(p.pop3.direct), proxy: await pop3Session(p.pop3.proxy) };
  const flow = { direct: await imapflow(p.imap.direct), proxy: await imapflow(p.imap.proxy) };
  await imap.direct.send('c CREATE Archive\r\n', tagged('c'));

  let n = 0;
  const commands: Record<string, () => string> = {
    NOOP: () => 'NOOP',
    'SELECT INBOX': () => 'SELECT INBOX',
    'UID FETCH n (FLAGS)': () => `UID FETCH ${1 + Math.floor(r() * p.messages)} (FLAGS)`,
    'STATUS Archive': () => 'STATUS Archive (MESSAGES UIDNEXT UNSEEN)',
  };
  const lat: Record<string, Record<Path, number[]>> = Object.fromEntries(Object.keys(commands).map((k) => [k, { direct: [], proxy: [] }]));
  const through: ClientResult['throughput'] = { fetch: { direct: [], proxy: [] }, imapflow: { direct: [], proxy: [] }, pop3: { direct: [], proxy: [] } };
  const logins: Record<'imap' | 'pop3', Record<Path, number[]>> = { imap: { direct: [], proxy: [] }, pop3: { direct: [], proxy: [] } };
  const wireBytes = { fetch: 0, pop3: 0 };

  const small = async (samples: number, keep: boolean) => {
    for (let i = 0; i < samples; i++) {
      for (const [name, text] of Object.entries(commands)) {
        const cmd = text();
        for (const path of i % 2 ? PATHS : [...PATHS].reverse()) {
          const tag = `t${++n}`;
          const t0 = performance.now();
          const a = await imap[path].send(`${tag} ${cmd}\r\n`, tagged(tag));
          const ms = performance.now() - t0;
          expectOk(cmd, a, new RegExp(`^${tag} OK`, 'm'));
          if (keep) lat[name][path].push(ms);
        }
      }
    }
  };
  const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
  const bulk = async (round: number, keep: boolean) => {
    const order = round % 2 ? PATHS : [...PATHS].reverse();
    // Each transfer returns its octets; Postern's CPU is read around the ones through it.
    const transfer = async (kind: Transfer, path: Path, run: () => Promise<number>) => {
      await mark({ start: kind, path });
      const t0 = performance.now();
      const bytes = await run();
      const ms = performance.now() - t0;
      await mark({ end: kind, path, bytes: keep ? bytes : 0 });
      if (keep) through[kind][path].push(mbps(bytes, ms));
      return bytes;
    };
    for (const path of order) {
      const c = imap[path];
      wireBytes.fetch = await transfer('fetch', path, async () => {
        const tag = `f${++n}`;
        const before = c.received;
        expectOk('fetch', await c.send(`${tag} UID FETCH 1:* BODY.PEEK[]\r\n`, fetchAnswer(tag)), new RegExp(`^${tag} OK`));
        return c.received - before;
      });
    }
    for (const path of order) {
      await transfer('imapflow', path, async () => {
        let bytes = 0;
        for await (const m of flow[path].fetch('1:*', { source: true }, { uid: true })) bytes += m.source?.length ?? 0;
        return bytes;
      });
    }
    for (const path of order) {
      const c = pop3[path];
      wireBytes.pop3 = await transfer('pop3', path, async () => {
        const before = c.received;
        for (let i = 1; i <= p.messages; i++) expectOk('RETR', await c.send(`RETR ${i}\r\n`, multiAnswer()), /^\+OK/);
        return c.received - before;
      });
    }
  };
  const loginRound = async (count: number, keep: boolean) => {
    for (let i = 0; i < count; i++) {
      for (const path of i % 2 ? PATHS : [...PATHS].reverse()) {
        const a = await imapLogin(p.imap[path]);
        const b = await pop3Login(p.pop3[path]);
        if (keep) {
          logins.imap[path].push(a);
          logins.pop3[path].push(b);
        }
      }
    }
  };

  // A round not counted: Dovecot's index and the page cache warm, Postern's code optimised.
  process.stderr.write('warm-up round\n');
  await small(Math.min(50, p.samples), false);
  await bulk(0, false);
  await loginRound(Math.min(5, p.logins), false);
  for (let round = 1; round <= p.rounds; round++) {
    process.stderr.write(`round ${round}/${p.rounds}\n`);
    await small(p.samples, true);
    await bulk(round, true);
    await loginRound(p.logins, true);
  }
  for (const path of PATHS) {
    imap[path].close();
    pop3[path].close();
    await flow[path].logout();
  }
  const latency: ClientResult['latency'] = {};
  for (const [name, by] of Object.entries(lat)) latency[name] = { direct: quantiles(by.direct), proxy: quantiles(by.proxy) };
  return {
    wireBytes,
    latency,
    throughput: through,
    login: { imap: { direct: quantiles(logins.imap.direct), proxy: quantiles(logins.imap.proxy) }, pop3: { direct: quantiles(logins.pop3.direct), proxy: quantiles(logins.pop3.proxy) } },
  };
}

function runClientProcess(p: Ports): Promise<ClientResult> {
  // The client's own process; a profile of the run (--cpu-prof) is of Postern.
  const argv = process.execArgv.filter((a, i, all) => !a.startsWith('--cpu-prof') && !/^--cpu-prof-(dir|name|interval)$/.test(all[i - 1] ?? ''));
  const child = spawn(process.execPath, [...argv, import.meta.filename, '--client', JSON.stringify(p)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // Postern's CPU during each kind of transfer; during the direct ones it relays nothing, which gives the rate of
  // what it does anyway (timers, the event sink), taken off the proxy's figure.
  const cpu = { direct: { us: 0, ms: 0 }, ...Object.fromEntries((['fetch', 'imapflow', 'pop3'] as const).map((k) => [k, { us: 0, ms: 0, bytes: 0 }])) } as
    { direct: { us: number; ms: number } } & Record<Transfer, { us: number; ms: number; bytes: number }>;
  let at: { cpu: NodeJS.CpuUsage; t: number } | null = null;
  return new Promise((resolve, reject) => {
    let result: ClientResult | undefined;
    child.on('message', (m: Mark | ClientResult) => {
      if ('start' in m) {
        at = { cpu: process.cpuUsage(), t: performance.now() };
        return child.send('go');
      }
      if ('end' in m) {
        const d = process.cpuUsage(at!.cpu);
        const ms = performance.now() - at!.t;
        if (m.bytes) {
          const c = m.path === 'direct' ? cpu.direct : cpu[m.end];
          c.us += d.user + d.system;
          c.ms += ms;
          if (m.path === 'proxy') cpu[m.end].bytes += m.bytes;
        }
        return child.send('go');
      }
      const idle = cpu.direct.us / cpu.direct.ms;
      const msPerMb = (k: Transfer) => ((cpu[k].us - idle * cpu[k].ms) / 1000) / (cpu[k].bytes / 1e6);
      result = { ...m, posternMsPerMb: { fetch: msPerMb('fetch'), imapflow: msPerMb('imapflow'), pop3: msPerMb('pop3') } };
    });
    child.on('error', reject);
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`the client exited ${code} without a result`))));
  });
}

// ---- the report ---------------------------------------------------------------------------------------------------

const f = (x: number, d = 2) => x.toFixed(d);
/** The median of each round's proxy/direct: the two ran back to back, so noise slower than a round cancels. */
const pairedRatio = (t: Record<Path, number[]>) => median(t.proxy.map((x, i) => x / t.direct[i]));

function report(r: ClientResult, o: { messages: number; mailboxBytes: number; rounds: number }): string {
  const out: string[] = [];
  const lat = r.latency;
  out.push(`Mailbox: ${o.messages} messages, ${f(o.mailboxBytes / 1e6, 1)} MB; ${o.rounds} rounds; ${os.cpus().length} cores, load ${os.loadavg().map((x) => f(x)).join(' ')}`);
  out.push('');
  out.push(`| command (ms, ${Object.values(lat)[0].direct.n} of each per path) | direct p50 | direct p99 | proxy p50 | proxy p99 | added p50 | added p99 |`);
  out.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [name, q] of Object.entries(lat)) {
    out.push(`| ${name} | ${f(q.direct.p50, 3)} | ${f(q.direct.p99, 3)} | ${f(q.proxy.p50, 3)} | ${f(q.proxy.p99, 3)} | ${f(q.proxy.p50 - q.direct.p50, 3)} | ${f(q.proxy.p99 - q.direct.p99, 3)} |`);
  }
  out.push('');
  out.push(`| transfer (MB/s, median of rounds; range) | direct | proxy | proxy/direct | Postern CPU per MB |`);
  out.push('| --- | --- | --- | --- | --- |');
  const names = { fetch: `IMAP UID FETCH 1:* BODY.PEEK[], raw client (${f(r.wireBytes.fetch / 1e6, 1)} MB)`, imapflow: 'IMAP fetch 1:* source, imapflow', pop3: `POP3 RETR 1..${o.messages}, one at a time (${f(r.wireBytes.pop3 / 1e6, 1)} MB)` };
  for (const k of ['fetch', 'imapflow', 'pop3'] as const) {
    const t = r.throughput[k];
    const range = (xs: number[]) => `${f(median(xs), 1)} (${f(Math.min(...xs), 0)}–${f(Math.max(...xs), 0)})`;
    const cpu = r.posternMsPerMb?.[k];
    out.push(`| ${names[k]} | ${range(t.direct)} | ${range(t.proxy)} | ${f(pairedRatio(t))} | ${cpu === undefined ? '' : `${f(cpu)} ms`} |`);
  }
  out.push('');
  out.push(`| login (ms, connect to OK; ${r.login.imap.direct.n} per path) | direct p50 | proxy p50 | added p50 | direct p99 | proxy p99 |`);
  out.push('| --- | --- | --- | --- | --- | --- |');
  for (const [k, name] of [['imap', 'IMAP LOGIN'], ['pop3', 'POP3 USER/PASS']] as const) {
    const q = r.login[k];
    out.push(`| ${name} | ${f(q.direct.p50)} | ${f(q.proxy.p50)} | ${f(q.proxy.p50 - q.direct.p50)} | ${f(q.direct.p99)} | ${f(q.proxy.p99)} |`);
  }
  out.push('');
  // Against the command that fares worst, not a pool of the four (their mix would hide a slow one).
  const added50 = Math.max(...Object.values(lat).map((q) => q.proxy.p50 - q.direct.p50));
  const added99 = Math.max(...Object.values(lat).map((q) => q.proxy.p99 - q.direct.p99));
  const ratio = pairedRatio(r.throughput.fetch);
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  out.push('Targets:');
  out.push(`  added latency p50 ≤ ${TARGET.addedP50Ms} ms (worst command): ${f(added50, 3)} ms, ${mark(added50 <= TARGET.addedP50Ms)}`);
  out.push(`  added latency p99 ≤ ${TARGET.addedP99Ms} ms (worst command): ${f(added99, 3)} ms, ${mark(added99 <= TARGET.addedP99Ms)}`);
  out.push(`  bulk FETCH through the proxy ≥ ${TARGET.fetchRatio * 100}% of direct: ${f(ratio * 100, 0)}%, ${mark(ratio >= TARGET.fetchRatio)}`);
  return out.join('\n');
}

// ---- the run ------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const messages = Number(values.messages);
  const rounds = Number(values.rounds);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  let dv: Dovecot | undefined;
  let postern: TestPostern | undefined;
  try {
    dv = await startDovecot({
      users: { [USER]: PASSWORD },
      lmtp: true,
      authFailureDelayS: 0,
      noPenalty: true,
      // Dovecot believes the address Postern forwards only from login_trusted_networks, as in production; every
      // session of the bench comes from one address, hence the higher limit; without fsync only the filling is faster.
      extra: 'login_trusted_networks = 127.0.0.1/32\nmail_max_userip_connections = 100\nmail_fsync = never',
    });
    const r = rng(1);
    const mail = Array.from({ length: messages }, (_, i) => benchMessage(i + 1, r));
    const mailboxBytes = mail.reduce((n, m) => n + m.length, 0);
    log(`delivering ${messages} messages (${f(mailboxBytes / 1e6, 1)} MB) over LMTP`);
    const t0 = performance.now();
    await deliver(dv.lmtpPort!, mail);
    log(`delivered in ${f((performance.now() - t0) / 1000, 1)} s`);
    postern = await startTestPostern(
      `[monitor.imap]\nenabled = true\nfailure_delay_ms = 0\n[monitor.imap.upstream]\nhost = "127.0.0.1"\nport = ${dv.imapPort}\n` +
        `[monitor.pop3]\nenabled = true\nfailure_delay_ms = 0\n[monitor.pop3.upstream]\nhost = "127.0.0.1"\nport = ${dv.pop3Port}\n`,
    );
    const { imap, pop3 } = postern.app.monitor;
    if (!imap || !pop3) throw new Error('the proxies are not listening');
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const result = await runClientProcess({
      imap: { direct: dv.imapPort, proxy: imap.port },
      pop3: { direct: dv.pop3Port, proxy: pop3.port },
      messages,
      rounds,
      samples: Number(values.samples),
      logins: Number(values.logins),
    });
    const cpu = process.cpuUsage(cpu0);
    const posternCpu = { cpuS: (cpu.user + cpu.system) / 1e6, wallS: (performance.now() - wall0) / 1000 };
    if (values.json) console.log(JSON.stringify({ messages, mailboxBytes, rounds, node: process.version, cores: os.cpus().length, loadavg: os.loadavg(), postern: posternCpu, ...result }, null, 2));
    else console.log(`${report(result, { messages, mailboxBytes, rounds })}\nPostern's process: ${f(posternCpu.cpuS, 1)} s CPU in ${f(posternCpu.wallS, 1)} s of measuring.`);
  } finally {
    await postern?.close();
    await dv?.stop();
  }
}

if (values.client) {
  const result = await runClient(JSON.parse(values.client) as Ports);
  process.send!(result, () => process.exit(0));
} else {
  await main();
}
