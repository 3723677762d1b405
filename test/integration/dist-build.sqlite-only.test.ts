// The compiled build (npm run build): tsc turns src/ into JavaScript that runs without tsx, the trend analyzer's
// worker thread included (it has its own entry when compiled). A real `postern start` from the build takes a message
// over SMTP, relays it to a real downstream, and the analyzer thread reads its events.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { freePort, PosternChild } from '../harness/child.ts';
import { tempDir, until } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = tempDir('postern-dist-');
let child: PosternChild | undefined;
let sink: Sink | undefined;

afterAll(async () => {
  await child?.stop();
  await sink?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the compiled build', () => {
  it('builds, starts, relays a message and runs the analyzer thread without tsx', async () => {
    // Inside the project, where the compiled modules find node_modules; .tmp/ is not tracked.
    fs.mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
    const out = fs.mkdtempSync(path.join(ROOT, '.tmp', 'dist-'));
    onTestFinished(() => fs.rmSync(out, { recursive: true, force: true }));
    const b = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build-dist.mjs'), '--out', out], { encoding: 'utf8' });
    expect(b.status, b.stdout + b.stderr).toBe(0);
    expect(b.stdout + b.stderr).not.toMatch(/error TS/);
    expect(fs.existsSync(path.join(out, 'trends', 'worker-main.js'))).toBe(true);
    sink = await startSink();
    const port = await freePort();
    const cfg = path.join(dir, 'postern.toml');
    fs.writeFileSync(
      cfg,
      [
        `data_dir = ${JSON.stringify(path.join(dir, 'data'))}`,
        '[gateway]',
        `listen = "127.0.0.1:${port}"`,
        'domains = ["example.net"]',
        '[gateway.greet_pause]',
        'unknown_ms = 0',
        '[relay.downstream]',
        'host = "127.0.0.1"',
        `port = ${sink.port}`,
        'protocol = "smtp"',
        'tls = "none"',
        '[analysis.checks.auth]',
        'enabled = false',
        '[web]',
        'enabled = false',
        '[trends]',
        'poll_ms = 50',
      ].join('\n') + '\n',
    );
    child = await PosternChild.start(cfg, 30_000, path.join(out, 'main.js'));
    const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    const info = await t.sendMail({ from: 'ann@example.org', to: 'bob@example.net', subject: 'From the build', text: 'Relayed by the compiled gateway.\n' });
    expect(info.accepted).toEqual(['bob@example.net']);
    await until(() => sink!.messages.some((m) => m.raw.toString().includes('Subject: From the build')), 15_000, 'the downstream to get the message');
    const db = new Database(path.join(dir, 'data', 'postern.db'), { readonly: true });
    try {
      const state = await until(() => {
        const r = db.prepare('select last_event_id from analyzer_state where id = 1').get() as { last_event_id: number } | undefined;
        return r && r.last_event_id > 0 ? r : undefined;
      }, 15_000, 'the analyzer thread to read the events');
      expect(state.last_event_id).toBeGreaterThan(0);
    } finally {
      db.close();
    }
    expect(child.output).not.toMatch(/trend analyzer (failed|exited|did not start)/);
    // The message was analysed in the compiled analysis thread (analysis.threads defaults to 1).
    expect(child.output).not.toMatch(/analysis thread|analysis failed/);
  });
});
