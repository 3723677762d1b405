// The postern command as a user runs it: start writes a default config, trace tells a message's story.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { tempDir, until } from '../harness/postern.ts';

const BIN = path.resolve('bin/postern.js');
const kills: (() => void)[] = [];
afterEach(() => {
  for (const k of kills.splice(0)) k();
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe('postern CLI', () => {
  it('start writes a default config on first start, accepts mail, and trace explains it', async () => {
    const dir = tempDir();
    const port = await freePort();
    // First start writes the defaults; rewrite listen to a free port for the test, keeping the rest.
    const child0 = spawn(process.execPath, [BIN, 'start'], { cwd: dir, stdio: 'pipe' });
    kills.push(() => child0.kill('SIGKILL'));
    await until(() => fs.existsSync(path.join(dir, 'postern.toml')) && fs.existsSync(path.join(dir, 'data', 'tls', 'cert.pem')), 20_000, 'first start');
    child0.kill('SIGTERM');
    await new Promise((r) => child0.once('exit', r));
    const conf = fs.readFileSync(path.join(dir, 'postern.toml'), 'utf8');
    expect(conf).toContain('listen = "127.0.0.1:2525"');
    expect(conf).toContain('listen = "127.0.0.1:8025"');
    fs.writeFileSync(path.join(dir, 'postern.toml'), conf.replace('127.0.0.1:2525', `127.0.0.1:${port}`).replace('127.0.0.1:8025', `127.0.0.1:${await freePort()}`));

    const child = spawn(process.execPath, [BIN, 'start'], { cwd: dir, stdio: 'pipe' });
    kills.push(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await until(() => out.includes('accepting mail'), 20_000, 'second start');
    const c = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, tls: { rejectUnauthorized: false } });
    const info = await c.sendMail({ from: 'alice@example.org', to: 'bob@localhost', subject: 'cli', text: 'hi', messageId: '<cli-1@example.org>' });
    const qid = /queued as (\w+)/.exec(info.response)?.[1];
    expect(qid).toMatch(/^[0-9A-Z]{20}$/);
    await until(() => fs.existsSync(path.join(dir, 'data', 'mailboxes', 'bob@localhost', 'new')) && fs.readdirSync(path.join(dir, 'data', 'mailboxes', 'bob@localhost', 'new')).length === 1);
    // Events are written in batches; give the sink its flush interval.
    const trace = await until(() => {
      const t = execFileSync(process.execPath, [BIN, 'trace', '<cli-1@example.org>'], { cwd: dir, encoding: 'utf8' });
      return t.includes('delivery via local') ? t : null;
    }, 10_000, 'trace with delivery');
    expect(trace).toContain(`queue id   ${qid}`);
    expect(trace).toContain('bob@localhost: accept → delivered');
    expect(trace).toMatch(/RCPT TO:<bob@localhost> accepted/);
    const json = JSON.parse(execFileSync(process.execPath, [BIN, 'trace', qid!, '--json'], { cwd: dir, encoding: 'utf8' }));
    expect(json.queue_id).toBe(qid);
    const list = execFileSync(process.execPath, [BIN, 'queue', 'list'], { cwd: dir, encoding: 'utf8' });
    expect(list).toContain('queue is empty');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    // Two starts and three commands, each a fresh Node process compiling TypeScript: slow on a busy machine.
  }, 90_000);

  it('config check names the bad key and exits 78', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'bad.toml'), '[gateway]\nlisten = "nowhere"\nmax_recipientz = 5\n');
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [BIN, 'config', 'check', 'bad.toml'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = (e as { stderr: string }).stderr;
    }
    expect(status).toBe(78);
    expect(stderr).toContain('gateway.listen: expected "host:port"');
    expect(stderr).toContain('gateway.max_recipientz: unknown key');
  });
});
