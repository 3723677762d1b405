// reliability.md D-01/D-10: the spool as a crash leaves it at each step, built by hand, then a start. Files of
// interrupted writes and files never committed are removed and never delivered; files of finished messages are
// removed; every open recipient of a thousand queued messages is delivered exactly once; recipients delivered
// before the crash are not sent again; deferred ones wait for their time.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freshPgSchema, tempDir, TEST_STORE, until } from '../harness/postern.ts';
import { startRawSink } from '../harness/raw-sink.ts';
import { missing } from '../harness/services.ts';
import { writeFile } from '../harness/child.ts';
import { loadConfig } from '../../src/config/load.ts';
import { startPostern } from '../../src/app.ts';
import { silentLogger } from '../../src/core/log.ts';
import { openStore } from '../../src/store/db.ts';
import { Spool } from '../../src/gateway/spool.ts';
import { queueId } from '../../src/core/ids.ts';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const OPEN = 1000;

describe.skipIf(await missing('postgres'))('start-up recovery of the spool', () => {
  it('resumes what was owned, drops what was not, and delivers each open recipient once', { timeout: 120_000 }, async () => {
    const sink = await startRawSink();
    cleanup.push(() => sink.close());
    const dir = tempDir('postern-recover-');
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    let storeUrl = '';
    if (TEST_STORE === 'postgres') {
      const s = await freshPgSchema();
      cleanup.push(() => s.drop().catch(() => undefined));
      storeUrl = s.url;
    }
    // The analyzer stays off: this is the relay's recovery against a clock, on two cores.
    const file = writeFile(
      path.join(dir, 'postern.toml'),
      `data_dir = "data"\n[trends]\nenabled = false\n[relay]\nretry_schedule_s = [1]\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\ntls = "none"\n[store]\nurl = ${JSON.stringify(storeUrl)}\n`,
    );
    const dataDir = path.join(dir, 'data');

    // The state a crash leaves, written with no Postern running.
    const store = await openStore({ url: storeUrl, dataDir });
    const spool = new Spool(dataDir);
    const now = Date.now();
    const raw = (tag: string) => Buffer.from(`From: <a@example.org>\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@example.org>\r\n\r\nbody\r\n`);
    const msgRow = (id: string, tag: string, status: string) => ({
      id, message_id: `<${tag}@example.org>`, received_at: now - 5_000, conn_id: null, client_ip: null, helo: null, mail_from: 'a@example.org',
      size: 60, subject: tag, score: 0, symbols: '[]', verdict: '{}', status,
    });
    const rcptRow = (id: string, rcpt: string, status: string, next = now - 1_000) => ({
      msg_id: id, rcpt, action: 'accept', reasons: '[]', status, route: 'downstream', deliver_to: rcpt, attempts: status === 'queued' ? 0 : 1,
      next_attempt_at: next, last_error: status === 'deferred' ? '451 4.3.0 later' : null, updated_at: now - 1_000,
    });
    const kinds = { open: [] as string[], partial: [] as string[], later: [] as string[], orphan: [] as string[], done: [] as string[] };
    const messages = [];
    const recipients = [];
    for (let i = 0; i < OPEN; i++) {
      const id = queueId();
      const tag = `open-${i}`;
      await spool.write(id, raw(tag));
      messages.push(msgRow(id, tag, 'queued'));
      recipients.push(rcptRow(id, 'bob@localhost', i % 3 === 0 ? 'deferred' : 'queued'));
      kinds.open.push(tag);
    }
    for (let i = 0; i < 10; i++) {
      // Crashed between the delivery to bob and the one to carol: only carol is still open.
      const id = queueId();
      const tag = `partial-${i}`;
      await spool.write(id, raw(tag));
      messages.push(msgRow(id, tag, 'queued'));
      recipients.push(rcptRow(id, 'bob@localhost', 'delivered'), rcptRow(id, 'carol@localhost', 'deferred'));
      kinds.partial.push(tag);
    }
    for (let i = 0; i < 5; i++) {
      const id = queueId();
      const tag = `later-${i}`;
      await spool.write(id, raw(tag));
      messages.push(msgRow(id, tag, 'queued'));
      recipients.push(rcptRow(id, 'bob@localhost', 'deferred', now + 3_600_000));
      kinds.later.push(tag);
    }
    for (let i = 0; i < 10; i++) {
      // Crashed after the 'done' commit, before the unlink.
      const id = queueId();
      const tag = `done-${i}`;
      await spool.write(id, raw(tag));
      messages.push(msgRow(id, tag, 'done'));
      recipients.push(rcptRow(id, 'bob@localhost', 'delivered'));
      kinds.done.push(tag);
    }
    for (let i = 0; i < 20; i++) {
      // Crashed after the rename, before the commit: the client never got a 250.
      await spool.write(queueId(), raw(`orphan-${i}`));
      kinds.orphan.push(`orphan-${i}`);
    }
    for (let i = 0; i < 7; i++) fs.writeFileSync(path.join(spool.tmpDir, `${queueId()}.eml`), raw(`torn-${i}`).subarray(0, 20));
    for (let i = 0; i < messages.length; i += 200) await store.db.insertInto('messages').values(messages.slice(i, i + 200)).execute();
    for (let i = 0; i < recipients.length; i += 200) await store.db.insertInto('recipients').values(recipients.slice(i, i + 200)).execute();
    await store.close();

    const t0 = Date.now();
    const app = await startPostern(loadConfig(file), { listen: { host: '127.0.0.1', port: 0 }, webListen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, relayPollMs: 200 });
    cleanup.push(() => app.close());
    const count = () => {
      const n = new Map<string, string[]>();
      for (const tx of sink.transactions) {
        const tag = /^Subject: (\S+)/m.exec(tx.wire.toString('latin1'))![1];
        n.set(tag, [...(n.get(tag) ?? []), ...tx.to]);
      }
      return n;
    };
    // A minute: the point is that each is delivered once, not how fast (a loaded machine takes several times longer).
    await until(() => kinds.open.concat(kinds.partial).every((t) => count().has(t)), 60_000, 'every open recipient delivered');
    const ms = Date.now() - t0;
    await until(async () => {
      const open = await app.store.db.selectFrom('recipients').select('msg_id').where('status', 'in', ['queued', 'deferred']).where('next_attempt_at', '<', now + 60_000).execute();
      return open.length === 0;
    }, 10_000, 'outcomes recorded');
    await until(async () => (await app.spool.listIds()).length === kinds.later.length, 5_000, 'spool down to the deferred ones');
    const got = count();
    for (const t of kinds.open) expect(got.get(t), t).toEqual(['bob@localhost']);
    for (const t of kinds.partial) expect(got.get(t), t).toEqual(['carol@localhost']);
    for (const t of [...kinds.orphan, ...kinds.done, ...kinds.later]) expect(got.has(t), t).toBe(false);
    expect(sink.transactions).toHaveLength(OPEN + kinds.partial.length);
    expect(fs.readdirSync(app.spool.tmpDir)).toEqual([]);
    await app.sink.flush();
    const ev = await app.store.db.selectFrom('events').select('data').where('type', '=', 'relay.recovered').executeTakeFirstOrThrow();
    expect(JSON.parse(ev.data)).toEqual({ orphans_removed: 20, finished_removed: 10, tmp_removed: 7, open_recipients: OPEN + 10 + 5 });
    console.info(`recovery (${TEST_STORE}): ${OPEN + kinds.partial.length} deliveries after start in ${ms} ms`);
  });
});
