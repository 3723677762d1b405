import fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load.ts';
import { silentLogger } from '../core/log.ts';
import type { PosternEvent } from '../core/events.ts';
import { openStore } from '../store/db.ts';
import { tempDir } from '../../test/harness/postern.ts';
import { analyseMessage, type AnalysisRequest } from './analyse.ts';
import { CHECKS } from './checks/index.ts';
import { checkOptions } from './registry-options.ts';
import { parseLimitsOf } from './mime-scan.ts';
import { Runner } from './runner.ts';
import { ScoreTable } from './scoring.ts';
import { AnalysisThreads } from './threads.ts';

const MESSAGE = [
  'Received: from mx.example.net ([198.51.100.7]) by gw.example.org (Postern) with ESMTP id 0001; Mon, 30 Nov 2026 10:00:00 +0000',
  'From: "Accounts" <billing@example.net>',
  'To: alice@example.org',
  'Subject: Your invoice is overdue',
  'MIME-Version: 1.0',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>Click here to verify your password: <a href="http://192.0.2.44/login">https://bank.example.com/login</a></p>',
  '<p>Act now! Limited time offer, 100% free, risk free.</p>',
  '',
].join('\r\n');

function request(): AnalysisRequest {
  return {
    raw: Buffer.from(MESSAGE, 'latin1'),
    session: { ip: '198.51.100.7', ourHostname: 'gw.example.org', ourDomains: ['example.org'], trusted: false, tls: false, helo: 'mx.example.net' },
    envelope: { mailFrom: 'billing@example.net', rcptTo: ['alice@example.org'], smtputf8: false, eightBitMime: false },
    transfer: { bareNewlines: 0, eightBitUndeclared: false },
    ids: { msg_id: 'm1', conn_id: 'c1' },
    fingerprint: { minShingles: 1 },
  };
}

describe('analysis threads', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup(opts: { jobTimeoutMs?: number } = {}) {
    const dir = tempDir();
    // No DNS in a unit test: the auth check is off, as on the event loop below.
    const config = parseConfigText(`data_dir = ${JSON.stringify(dir)}\n[analysis.checks.auth]\nenabled = false\n`);
    const store = await openStore({ url: '', dataDir: dir });
    const events: PosternEvent['type'][] = [];
    const threads = new AnalysisThreads({ count: 1, config, dataDir: dir, log: silentLogger, emit: (type) => events.push(type), ...opts });
    cleanup.push(async () => {
      await threads.stop();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    return { config, threads, events };
  }

  it('finds in a thread what the analysis on the event loop finds, with the fingerprint', async () => {
    const { config, threads } = await setup();
    const inThread = await threads.analyse(request());
    const runner = new Runner({
      checks: CHECKS,
      options: checkOptions(config.analysis.checks),
      scores: new ScoreTable(CHECKS, config.analysis.scores),
      timeoutMs: config.analysis.check_timeout_ms,
      log: silentLogger,
    });
    const inLine = await analyseMessage(runner, parseLimitsOf(config.analysis.parse), request());
    const names = (r: typeof inLine) => [...r.mail.hits, ...r.data.hits].map((h) => `${h.name}:${h.score}:${(h.detail ?? []).join('|')}`).sort();
    expect(names(inThread)).toEqual(names(inLine));
    expect(names(inThread).map((n) => n.split(':')[0])).toContain('URL_IP_LITERAL');
    expect(inThread.subject).toBe('Your invoice is overdue');
    expect(inThread.fp?.minhash).toEqual(inLine.fp?.minhash);
    expect(inThread.fp?.structure.domains).toEqual(inLine.fp?.structure.domains);
    expect(threads.stats()).toMatchObject({ threads: 1, running: 1, pending: 0, analysed: 1, failed: 0 });
  });

  it('replaces a thread that died, and the next message is analysed by its successor', async () => {
    const { threads } = await setup();
    await threads.started();
    const slot = (threads as unknown as { slots: { worker: Worker | null }[] }).slots[0];
    const first = slot.worker!;
    await first.terminate();
    const r = await threads.analyse(request());
    expect(r.data.hits.length).toBeGreaterThan(0);
    expect(slot.worker).not.toBe(first);
    expect(threads.stats()).toMatchObject({ running: 1, restarts: 1, analysed: 1 });
  });

  it('answers a message whose analysis overran with an error, and replaces the thread that held it', async () => {
    const { threads } = await setup({ jobTimeoutMs: 1 });
    await expect(threads.analyse(request())).rejects.toThrow(/longer than 1 ms/);
    expect(threads.stats()).toMatchObject({ failed: 1, restarts: 1, pending: 0 });
    await threads.started();
    expect(threads.stats().running).toBe(1);
  });

  it('finishes the messages in hand when stopped, then takes no more', async () => {
    const { threads } = await setup();
    const inHand = [threads.analyse(request()), threads.analyse(request())];
    await threads.stop();
    for (const r of await Promise.all(inHand)) expect(r.data.hits.length).toBeGreaterThan(0);
    await expect(threads.analyse(request())).rejects.toThrow(/stopping/);
    expect(threads.stats().running).toBe(0);
  });
});
