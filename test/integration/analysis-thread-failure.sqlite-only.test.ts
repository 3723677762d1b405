// An analysis thread that dies while it holds a message, seen from the SMTP client (analysis/threads.ts): the
// message gets 451 4.3.0 after DATA (the client tries again, nothing is dropped), check.failed is recorded, the
// gateway keeps serving, and once the thread is replaced the next message is accepted and relayed. The unit tests
// in src/analysis/threads.test.ts cover the pool itself; this is the same failure over a real socket. The store
// plays no part in it, so it runs on SQLite only.
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestPostern, tempDir, until } from '../harness/postern.ts';
import { startSink } from '../harness/sink.ts';
import { closeAll, envelope, events, hello, onCleanup, QUEUED, relayed, stored, type Gw } from '../harness/hostile.ts';
import type { AnalysisThreads } from '../../src/analysis/threads.ts';
import type { ToAnalysis } from '../../src/analysis/thread-main.ts';

afterEach(closeAll);

/** A gateway relaying to a sink, with one analysis thread and score thresholds out of reach. */
async function gateway(): Promise<Gw> {
  const sink = await startSink();
  onCleanup(() => sink.close());
  const toml = [
    '[gateway]',
    'domains = ["localhost"]',
    '[analysis]',
    'threads = 1',
    '[analysis.actions]',
    'tag = 1000\nquarantine = 2000\nreject = 3000',
    '[relay]',
    'retry_schedule_s = [3600]',
    '[relay.downstream]',
    `host = "127.0.0.1"\nport = ${sink.port}\ntls = "none"`,
  ].join('\n');
  const p = await startTestPostern(toml, { dir: tempDir() });
  onCleanup(() => p.close());
  return { p, sink };
}

/**
 * Makes the running analysis thread die with the next message it is handed: the message is posted to it and the
 * thread is terminated at once, in the same tick, long before it could answer. From the event loop this is what
 * any death of a thread looks like (out of memory, a native crash, an uncaught error): an 'exit' while the
 * message is pending. Terminating the Worker from outside is what the unit tests do too, and needs no test hook
 * in the thread's code. The replacement is a new Worker, which this does not touch.
 */
function dieWithNextMessage(threads: AnalysisThreads): Worker {
  const slot = (threads as unknown as { slots: { worker: Worker | null }[] }).slots[0];
  const w = slot.worker!;
  const post = w.postMessage.bind(w);
  w.postMessage = (m: ToAnalysis, transfer?: Parameters<Worker['postMessage']>[1]) => {
    post(m, transfer);
    if (m.t === 'job') void w.terminate();
  };
  return w;
}

describe('an analysis thread that fails with a message', () => {
  it('answers 451 4.3.0 after DATA, records check.failed, and accepts the next message on its successor', async () => {
    const gw = await gateway();
    const threads = gw.p.app.analysisThreads!;
    expect(threads.stats()).toMatchObject({ threads: 1, running: 1, restarts: 0 });
    const first = dieWithNextMessage(threads);

    const c = await hello(gw);
    await envelope(c, 'first@example.org');
    c.write('From: first@example.org\r\nSubject: lost thread\r\n\r\nbody\r\n.\r\n');
    expect(await c.reply()).toBe('451 4.3.0 Temporary local problem, please try again later\r\n');

    const failed = await until(async () => (await events(gw, 'check.failed'))[0], 5_000, 'check.failed');
    expect(failed).toEqual({ check: 'analysis', error: 'analysis thread exited with 1', on_error: 'defer' });
    const rejected = await events(gw, 'smtp.data.rejected');
    expect(rejected).toEqual([expect.objectContaining({ reason: 'check_failed', reply: '451 4.3.0', from: 'first@example.org', rcpts: ['bob@localhost'] })]);
    expect(await stored(gw)).toEqual([]);

    // The slot gets a new thread; the session is still open and the next transaction is analysed there.
    const slot = (threads as unknown as { slots: { worker: Worker | null }[] }).slots[0];
    await until(() => slot.worker && slot.worker !== first, 5_000, 'a new analysis thread');
    await threads.started();
    expect(threads.stats()).toMatchObject({ running: 1, pending: 0, restarts: 1, failed: 1, analysed: 0 });

    await envelope(c, 'second@example.org');
    c.write('From: second@example.org\r\nSubject: after the thread\r\n\r\nstill here\r\n.\r\n');
    const id = QUEUED.exec(await c.reply(20_000))?.[1];
    expect(id).toBeDefined();
    expect(await c.cmd('QUIT')).toMatch(/^221 /);
    expect(threads.stats()).toMatchObject({ running: 1, restarts: 1, failed: 1, analysed: 1 });
    expect((await stored(gw)).map((m) => m.mail_from)).toEqual(['second@example.org']);
    expect((await relayed(gw, id!)).raw.toString('latin1')).toMatch(/Subject: after the thread\r\n\r\nstill here\r\n$/);
    expect(gw.sink.messages).toHaveLength(1);
  });
});
