// `postern queue list|retry|flush` against the store of a running Postern (the first as a separate process, the
// rest in this one, as the CLI tests elsewhere do): a deferred message is listed with its next attempt and last
// error, and retry/flush make it due for the running relay.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { freshPgSchema, tempDir, TEST_STORE, until } from '../harness/postern.ts';
import { startSink } from '../harness/sink.ts';
import { missing } from '../harness/services.ts';
import { cli, writeFile } from '../harness/child.ts';
import { inProcess } from '../harness/cli.ts';
import { loadConfig } from '../../src/config/load.ts';
import { startPostern } from '../../src/app.ts';
import { silentLogger } from '../../src/core/log.ts';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe.skipIf(await missing('postgres'))('postern queue', () => {
  it('lists a deferred message with next attempt and last error; retry and flush make it due', { timeout: 60_000 }, async () => {
    let refuse = true;
    const sink = await startSink({ behaviour: { data: () => (refuse ? 451 : undefined) } });
    cleanup.push(() => sink.close());
    const dir = tempDir('postern-queue-');
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    let storeUrl = '';
    if (TEST_STORE === 'postgres') {
      const s = await freshPgSchema();
      cleanup.push(() => s.drop().catch(() => undefined));
      storeUrl = s.url;
    }
    const file = writeFile(
      path.join(dir, 'postern.toml'),
      `data_dir = "data"\n[gateway.greet_pause]\nunknown_ms = 0\n[relay]\nretry_schedule_s = [3600]\n` +
        `[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\ntls = "none"\n[store]\nurl = ${JSON.stringify(storeUrl)}\n`,
    );
    const app = await startPostern(loadConfig(file), { listen: { host: '127.0.0.1', port: 0 }, webListen: { host: '127.0.0.1', port: 0 }, logger: silentLogger, relayPollMs: 200 });
    cleanup.push(() => app.close());
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: app.smtp.port, secure: false, ignoreTLS: true });
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const info = await c.sendMail({ from: 'alice@example.org', to: 'bob@localhost', subject: `queued ${n}`, text: 'x' });
      ids.push(/queued as (\w+)/.exec(info.response)![1]);
    }
    const status = async (id: string) =>
      (await app.store.db.selectFrom('recipients').select(['status', 'next_attempt_at']).where('msg_id', '=', id).executeTakeFirstOrThrow()).status;
    await until(async () => (await status(ids[0])) === 'deferred' && (await status(ids[1])) === 'deferred', 10_000, 'deferrals');

    const list = await cli(['queue', 'list', '--config', file], dir);
    expect(list.code).toBe(0);
    for (const id of ids) {
      expect(list.stdout).toMatch(new RegExp(`${id}  \\S+ \\S+  <alice@example\\.org> → <bob@localhost>  deferred, 1 attempt\\(s\\), next \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\n    last error: 451 4\\.3\\.0 later`));
    }
    expect(list.stdout).toContain('2 message(s), 2 recipient(s)');
    expect(list.stdout).toMatch(/^spool on disk: 1 segment file\(s\), 0\.0 MB; 0 per-message file\(s\)$/m);
    const json = JSON.parse((await inProcess(['queue', 'list', '--json', '--config', file])).stdout) as { msg_id: string; next_attempt_at: number; last_error: string }[];
    expect(json.map((r) => r.msg_id).sort()).toEqual([...ids].sort());
    for (const r of json) expect(r.next_attempt_at).toBeGreaterThan(Date.now() + 3_000_000);

    refuse = false;
    const retry = await inProcess(['queue', 'retry', ids[0], '--config', file]);
    expect(retry).toMatchObject({ code: 0, stdout: `${ids[0]}: 1 recipient(s) due now\n` });
    // The running relay polls every 200 ms here.
    await until(async () => (await status(ids[0])) === 'delivered', 5_000, 'retry picked up by the running relay');
    expect(await status(ids[1])).toBe('deferred');
    expect(sink.messages).toHaveLength(1);

    const flush = await inProcess(['queue', 'flush', '--config', file]);
    expect(flush).toMatchObject({ code: 0, stdout: '1 recipient(s) due now\n' });
    await until(async () => (await status(ids[1])) === 'delivered', 5_000, 'flush picked up by the running relay');
    expect(sink.messages).toHaveLength(2);

    expect((await inProcess(['queue', 'list', '--config', file])).stdout).toContain('queue is empty');
    const none = await inProcess(['queue', 'retry', ids[0], '--config', file]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`nothing waiting for ${ids[0]}`);
  });
});
