// reliability.md D-01/D-10: Postern as a real process, killed with SIGKILL while 8 clients send and the relay
// delivers, then restarted. Every message that got a 250 arrives downstream at least once and at most twice,
// nothing refused arrives, and recovery leaves no partial spool file. Runs on the store the project selects
// (SQLite in the sqlite project, PostgreSQL in the postgres project).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { freshPgSchema, tempDir, TEST_STORE, until } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { freePort, PosternChild, writeFile } from '../harness/child.ts';
import { startRawSink, type RawSink } from '../harness/raw-sink.ts';
import { openStore } from '../../src/store/db.ts';

const CLIENTS = 8;

type Result = { kind: 'ok'; qid: string } | { kind: 'refused'; reply: string } | { kind: 'noreply' };

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function messageIdOf(wire: Buffer): string | undefined {
  return /^Message-ID:\s*(<[^>\r\n]+>)/im.exec(wire.toString('latin1'))?.[1];
}

/** Times of the downstream deliveries acknowledged with a 2xx, by Message-ID. */
function deliveries(sink: RawSink): Map<string, number[]> {
  const n = new Map<string, number[]>();
  for (const tx of sink.transactions) {
    if (!tx.reply.startsWith('2')) continue;
    const mid = messageIdOf(tx.wire);
    if (mid) n.set(mid, [...(n.get(mid) ?? []), tx.at]);
  }
  return n;
}

/** Pids of the gateway workers of a primary (Linux): its children that run postern (not, say, a compiler service). */
function childPids(pid: number): number[] {
  try {
    const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.filter((k) => {
      try {
        return fs.readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('postern.js');
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

// workers = 1: one process does everything. workers = 2: two gateway workers and a primary that owns the store
// and the relay; a kill -9 of the primary takes the workers down with it, and one more round kills a worker alone.
// The cluster's own failure modes do not depend on the store, so on PostgreSQL only the single process runs (the
// store's durability under kill -9 is what that run adds).
describe.skipIf(await missing('postgres')).each(TEST_STORE === 'postgres' ? [1] : [1, 2])(`crash and restart (${TEST_STORE}, workers = %i)`, (WORKERS) => {
  it('keeps every message that got a 250 across kill -9 at different moments', { timeout: 150_000 }, async () => {
    // Clients send until the last kill round is over (so no round waits for traffic that has run out), up to a cap.
    const MAX = 3000;
    let done = false;
    const dir = tempDir('postern-crash-');
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    // The relay direction is slowed a little in the last round so that deliveries are in flight at the kill.
    let slow = false;
    const sink = await startRawSink({ data: () => (slow ? { delayMs: 30 } : 250) });
    cleanup.push(() => sink.close());
    let storeUrl = '';
    if (TEST_STORE === 'postgres') {
      const s = await freshPgSchema();
      cleanup.push(() => s.drop().catch(() => undefined));
      storeUrl = s.url;
    }
    const port = await freePort();
    const conf = writeFile(
      path.join(dir, 'postern.toml'),
      `data_dir = "data"
[gateway]
listen = "127.0.0.1:${port}"
domains = ["localhost"]
workers = ${WORKERS}
[gateway.greet_pause]
unknown_ms = 0
suspicious_ms = 0
[relay]
retry_schedule_s = [1]
[relay.downstream]
host = "127.0.0.1"
port = ${sink.port}
tls = "none"
[store]
url = ${JSON.stringify(storeUrl)}
[web]
enabled = false
[analysis.checks.auth]
enabled = false
# Durability only: the analyzer (its own tests cover it, restarts included) would add a thread to every restart.
[trends]
enabled = false
[outbreak]
enabled = false
[log]
level = "warn"
`,
    );
    const spoolTmp = path.join(dir, 'data', 'spool', 'tmp');
    const spoolQueue = path.join(dir, 'data', 'spool', 'queue');

    let child = await PosternChild.start(conf, 40_000);
    cleanup.push(() => child.stop());

    const results = new Map<string, Result>();
    let next = 0;
    let inflight = 0;
    let gate: Promise<void> | null = null;
    let open: () => void = () => undefined;
    const okCount = () => [...results.values()].filter((r) => r.kind === 'ok').length;
    const worker = async (w: number) => {
      const t = nodemailer.createTransport({ host: '127.0.0.1', port, pool: true, maxConnections: 1, secure: false, ignoreTLS: true });
      try {
        while (!done && next < MAX) {
          while (gate) await gate;
          const i = next++;
          const mid = `<crash-${i}-${w}@example.org>`;
          inflight++;
          try {
            const info = await t.sendMail({
              from: 'alice@example.org',
              to: [`user${i % 5}@localhost`],
              subject: `crash ${i}`,
              text: `message ${i}\n`.repeat(1 + (i % 40)),
              messageId: mid,
            });
            results.set(mid, { kind: 'ok', qid: /queued as (\w+)/.exec(info.response)?.[1] ?? '' });
          } catch (e) {
            const err = e as { responseCode?: number; response?: string };
            results.set(mid, err.responseCode ? { kind: 'refused', reply: err.response ?? '' } : { kind: 'noreply' });
          } finally {
            inflight--;
          }
        }
      } finally {
        t.close();
      }
    };

    // From the kill signal until the new process listens: a reply the sink writes in that time reaches nobody.
    const down: { from: number; to: number }[] = [];
    const restart = async (why: string, beforeStart = () => {}) => {
      gate = new Promise<void>((r) => (open = r));
      const from = Date.now();
      await child.kill9();
      beforeStart();
      await until(() => inflight === 0, 10_000, `clients to notice the kill (${why})`);
      child = await PosternChild.start(conf, 40_000);
      down.push({ from, to: Date.now() });
      // Recovery ran before the listener opened: no partial file may be left, and every queued file has its row.
      expect(fs.readdirSync(spoolTmp), `spool tmp after ${why}`).toEqual([]);
      const g = gate;
      gate = null;
      open();
      await g;
    };

    const workers = Array.from({ length: CLIENTS }, (_, w) => worker(w));
    // 1: in the middle of a steady stream.
    await until(() => okCount() >= 60, 20_000, '60 messages accepted');
    await restart('kill during the stream');
    // 2: right after a restart, while the relay works off the backlog and clients reconnect.
    const before = okCount();
    await until(() => okCount() >= before + 5, 20_000, 'traffic after the first restart');
    await restart('kill right after restart');
    if (WORKERS > 1) {
      // A gateway worker alone: its sessions break, the primary starts another, and nothing it acknowledged is lost.
      // Its unacknowledged files wait for the next start's recovery, which round 3 provides.
      const before4 = okCount();
      await until(() => okCount() >= before4 + 20, 20_000, 'traffic before the worker kill');
      const pids = childPids(child.proc.pid!);
      expect(pids.length).toBe(WORKERS);
      process.kill(pids[0], 'SIGKILL');
      await until(() => {
        const now = childPids(child.proc.pid!);
        return now.length === WORKERS && !now.includes(pids[0]);
      }, 30_000, 'the primary to replace the killed worker');
    }
    // 3: with deliveries to the downstream in flight.
    slow = true;
    const before3 = okCount();
    await until(() => okCount() >= before3 + 60 && sink.transactions.some((t) => t.reply === 'pending'), 20_000, 'deliveries in flight').catch((e) => {
      console.info(`ok ${okCount()} before ${before3} next ${next} inflight ${inflight} pending ${sink.transactions.filter((t) => t.reply === 'pending').length}\n${child.output}`);
      throw e;
    });
    await restart('kill with deliveries in flight', () => (slow = false));
    // 4, 5: at random moments (printed, to replay a failure by hand).
    for (let k = 0; k < 2; k++) {
      const ms = Math.floor(Math.random() * 400);
      console.info(`crash test: random kill ${ms} ms after reopening`);
      await new Promise((r) => setTimeout(r, ms));
      await restart(`random kill after ${ms} ms`);
    }
    // Some traffic after the last restart, then the clients stop.
    const before5 = okCount();
    await until(() => okCount() >= before5 + 100, 20_000, 'traffic after the last restart');
    done = true;
    await Promise.all(workers);

    const oks = new Map([...results].filter(([, r]) => r.kind === 'ok')) as Map<string, { kind: 'ok'; qid: string }>;
    const refused = new Set([...results].filter(([, r]) => r.kind === 'refused').map(([m]) => m));
    expect(oks.size).toBeGreaterThan(200);
    const lost = () => [...oks.keys()].filter((m) => !deliveries(sink).has(m));
    await until(() => lost().length === 0, 15_000, 'every accepted message downstream').catch(() => undefined);
    expect(lost(), 'accepted with 250 but never delivered').toEqual([]);
    // Let the relay settle, then look at the store through a connection of our own.
    const loaded = { url: storeUrl, dataDir: path.join(dir, 'data') };
    await until(async () => {
      const s = await openStore(loaded);
      try {
        const open = await s.db.selectFrom('recipients').select('msg_id').where('status', 'in', ['queued', 'deferred']).execute();
        return open.length === 0;
      } finally {
        await s.close();
      }
    }, 20_000, 'no open recipient');
    await child.stop();

    const got = deliveries(sink);
    const dupes = [...got.values()].filter((t) => t.length > 1).length;
    for (const [mid, times] of got) {
      // A second copy only ever comes from a kill between the downstream's 250 and our record of it (D-10): at
      // most twice, and never twice without a kill in between. Only when two kills in a row hit the same message
      // in that window (a redelivery after a restart, killed again) can a third copy be right (RFC 1047).
      const first = times[0];
      const last = times[times.length - 1];
      const killsBetween = down.filter((d) => d.from < last && d.to > first).length;
      expect(times.length, `${mid} delivered ${times.length} times with ${killsBetween} kills in between`).toBeLessThanOrEqual(1 + killsBetween);
      // Delivered means it got a 250, or its client saw no reply at all (RFC 1047), never a refusal.
      expect(refused.has(mid), `${mid} was refused but delivered`).toBe(false);
      expect(results.has(mid), `${mid} delivered but never sent`).toBe(true);
    }
    const s = await openStore(loaded);
    try {
      const rows = await s.db.selectFrom('messages').select(['id', 'message_id', 'status']).execute();
      const byMid = new Map(rows.map((r) => [r.message_id, r]));
      for (const [mid, r] of oks) {
        expect(byMid.get(mid)?.id, `queue id of ${mid}`).toBe(r.qid);
        expect(byMid.get(mid)?.status).toBe('done');
      }
      for (const r of rows) expect(r.message_id && refused.has(r.message_id), `${r.message_id} refused but owned`).toBeFalsy();
      const rcpts = await s.db.selectFrom('recipients').select(['status']).execute();
      expect(new Set(rcpts.map((r) => r.status))).toEqual(new Set(['delivered']));
    } finally {
      await s.close();
    }
    expect(fs.readdirSync(spoolTmp)).toEqual([]);
    expect(fs.readdirSync(spoolQueue)).toEqual([]);
    console.info(`crash test (${TEST_STORE}, workers ${WORKERS}): ${oks.size} accepted, ${results.size - oks.size - refused.size} without reply, ${refused.size} refused, ${dupes} delivered more than once, ${[...got.values()].filter((t) => t.length > 2).length} of them three times or more`);
  });
});
