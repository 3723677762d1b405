// The quarantine's actions against a running Postern and a real downstream: release to one recipient only, delete
// with the shared blob, allow and block the sender, report to the classifier, purge, the events with who acted, and
// the postern quarantine command against the same store.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { missing } from '../harness/services.ts';
import { QuarantineError } from '../../src/quarantine/service.ts';
import { cliActor } from '../../src/cli/quarantine.ts';
import { inProcess } from '../harness/cli.ts';


// Mail from spam.example scores 9, over the quarantine threshold of 8: held by score, not forced by a rule, so an
// allow-listed sender is delivered.
const toml = (sinkPort: number) => `
[gateway]
domains = ["example.com"]
[relay]
retry_schedule_s = [3600]
[relay.downstream]
host = "127.0.0.1"
port = ${sinkPort}
protocol = "smtp"
tls = "none"
[[policy.rules]]
sender = "*@spam.example"
score = 9
`;

const MSG = (from: string, subject: string) =>
  `From: <${from}>\r\nTo: team@example.com\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@spam.example>\r\n\r\nCheap offers, today only.\r\n`;

describe.skipIf(await missing('postgres'))('quarantine actions', () => {
  let sink: Sink;
  let p: TestPostern;
  let configFile: string;
  const smtp = () => nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
  async function send(from: string, to: string[], subject: string): Promise<string> {
    const info = await smtp().sendMail({ envelope: { from, to }, raw: MSG(from, subject) });
    return /queued as (\w+)/.exec(info.response)![1];
  }
  const held = (msgId: string) => p.app.store.db.selectFrom('quarantine').selectAll().where('msg_id', '=', msgId).orderBy('rcpt').execute();
  const blobFile = (key: string) => path.join(p.dir, 'quarantine', key.slice(0, 2), `${key}.eml`);
  const bySubject = (s: string) => sink.messages.filter((m) => m.raw.toString().includes(`Subject: ${s}`));
  const cli = (...a: string[]) => inProcess([...a, '--config', configFile]);

  beforeAll(async () => {
    sink = await startSink();
    p = await startTestPostern(toml(sink.port));
    // The command line reads the same data directory and store as the running Postern.
    configFile = path.join(p.dir, 'cli.toml');
    const url = p.app.quarantine.deps.config.store.url;
    fs.writeFileSync(configFile, `data_dir = ${JSON.stringify(p.dir)}\n${toml(sink.port)}${url ? `[store]\nurl = ${JSON.stringify(url)}\n` : ''}`);
  });
  afterAll(async () => {
    await p?.close();
    await sink?.close();
  });

  it('releases to one recipient only, once; deletes; the shared blob goes with the last held copy', async () => {
    const id = await send('offers@spam.example', ['alice@example.com', 'bob@example.com', 'carol@example.com'], 'three held');
    const rows = await until(async () => ((await held(id)).length === 3 ? held(id) : undefined));
    expect(rows.map((r) => [r.rcpt, r.status])).toEqual([
      ['alice@example.com', 'held'],
      ['bob@example.com', 'held'],
      ['carol@example.com', 'held'],
    ]);
    expect(new Set(rows.map((r) => r.blob)).size).toBe(1);
    const blob = blobFile(rows[0].blob);
    expect(fs.existsSync(blob)).toBe(true);
    expect(bySubject('three held')).toHaveLength(0);

    const { entry } = await p.app.quarantine.release(rows[0].id, 'admin:test');
    expect(entry.status).toBe('released');
    await until(() => bySubject('three held').length === 1, 10_000, 'the released copy at the sink');
    await new Promise((r) => setTimeout(r, 500));
    expect(bySubject('three held').map((m) => m.to)).toEqual([['alice@example.com']]);
    const second = await p.app.quarantine.release(rows[0].id, 'admin:test').catch((e: unknown) => e);
    expect(second).toBeInstanceOf(QuarantineError);
    expect((second as QuarantineError).code).toBe('not_held');

    await p.app.quarantine.delete(rows[1].id, 'admin:test');
    expect(fs.existsSync(blob)).toBe(true); // carol's copy is still held
    await p.app.quarantine.delete(rows[2].id, 'admin:test');
    expect(fs.existsSync(blob)).toBe(false);
    expect((await held(id)).map((r) => r.status)).toEqual(['released', 'deleted', 'deleted']);
    expect(bySubject('three held')).toHaveLength(1);
  });

  it('allows a sender for one recipient: the next message reaches them, the other recipient still has it held', async () => {
    const id = await send('eve@spam.example', ['alice@example.com', 'bob@example.com'], 'before allow');
    const rows = await until(async () => ((await held(id)).length === 2 ? held(id) : undefined));
    const policy = await p.app.quarantine.listSender(rows[0].id, 'allow', 'user', 'user:alice@example.com');
    expect(policy.params.for).toBe('alice@example.com');
    await p.app.policies.load();
    const next = await send('eve@spam.example', ['alice@example.com', 'bob@example.com'], 'after allow');
    await until(() => bySubject('after allow').length === 1, 10_000, 'the allowed copy');
    expect(bySubject('after allow')[0].to).toEqual(['alice@example.com']);
    expect((await held(next)).map((r) => r.rcpt)).toEqual(['bob@example.com']);
  });

  it('blocks a sender for one recipient: RCPT is refused with 550 for them only', async () => {
    const id = await send('mallory@spam.example', ['alice@example.com'], 'before block');
    const [row] = await until(async () => ((await held(id)).length === 1 ? held(id) : undefined));
    await p.app.quarantine.listSender(row.id, 'block', 'user', 'user:alice@example.com');
    await p.app.policies.load();
    const info = await smtp().sendMail({ envelope: { from: 'mallory@spam.example', to: ['alice@example.com', 'bob@example.com'] }, raw: MSG('mallory@spam.example', 'after block') });
    expect(info.accepted).toEqual(['bob@example.com']);
    expect(info.rejected).toEqual(['alice@example.com']);
    expect((info.rejectedErrors?.[0] as { response?: string }).response).toMatch(/^550 5\.7\.1 /);
  });

  it('reports as spam and then as not spam: the classifier counts move', async () => {
    const id = await send('offers@spam.example', ['dave@example.com'], 'report me');
    const [row] = await until(async () => ((await held(id)).length === 1 ? held(id) : undefined));
    const counts = async () => {
      const s = await p.app.store.db.selectFrom('bayes_state').select(['spam_messages', 'ham_messages']).executeTakeFirst();
      return { spam: Number(s?.spam_messages ?? 0), ham: Number(s?.ham_messages ?? 0) };
    };
    const before = await counts();
    expect(await p.app.quarantine.report(row.id, 'spam', 'user:dave@example.com')).toEqual({ learned: true });
    expect(await counts()).toEqual({ spam: before.spam + 1, ham: before.ham });
    expect(await p.app.quarantine.report(row.id, 'ham', 'user:dave@example.com')).toEqual({ learned: true });
    expect(await counts()).toEqual({ spam: before.spam, ham: before.ham + 1 });
  });

  it('purges entries past their expiry with their blob', async () => {
    const id = await send('offers@spam.example', ['erin@example.com'], 'purge me');
    const [row] = await until(async () => ((await held(id)).length === 1 ? held(id) : undefined));
    expect(fs.existsSync(blobFile(row.blob))).toBe(true);
    await p.app.store.db.updateTable('quarantine').set({ expires_at: Date.now() - 1000 }).where('id', '=', row.id).execute();
    const r = await p.app.quarantine.purge();
    expect(r.expired).toBeGreaterThanOrEqual(1);
    expect(await held(id)).toEqual([]);
    expect(fs.existsSync(blobFile(row.blob))).toBe(false);
  });

  it('records every action as an event with who did it', async () => {
    await p.app.sink.flush();
    const events = await p.app.store.db.selectFrom('events').select(['type', 'data']).where('type', 'like', 'quarantine.%').execute();
    const by = (type: string) => events.filter((e) => e.type === type).map((e) => (JSON.parse(e.data) as { by?: string }).by);
    expect(by('quarantine.released')).toContain('admin:test');
    expect(by('quarantine.deleted')).toEqual(expect.arrayContaining(['admin:test', 'admin:test']));
    expect(by('quarantine.sender_listed')).toEqual(expect.arrayContaining(['user:alice@example.com', 'user:alice@example.com']));
    expect(by('quarantine.reported')).toEqual(['user:dave@example.com', 'user:dave@example.com']);
  });

  it('works from the command line against the running Postern', async () => {
    const id = await send('offers@spam.example', ['frank@example.com', 'grace@example.com'], 'cli held');
    await until(async () => (await held(id)).length === 2);
    const list = await cli('quarantine', 'list', '--rcpt', 'frank@example.com', '--json');
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as { entries: { id: string; subject: string }[]; total: number };
    expect(listed.total).toBe(1);
    const fid = listed.entries[0].id;
    expect(listed.entries[0].subject).toBe('cli held');
    const table = await cli('quarantine', 'list', '--domain', 'example.com', '--sender', 'offers@spam.example');
    expect(table.stdout).toMatch(/^ID\s+RECEIVED\s+STATUS/);
    expect(table.stdout).toContain('grace@example.com');
    const shown = await cli('quarantine', 'show', fid);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/score\s+9\.\d\d/);

    const released = await cli('quarantine', 'release', fid);
    expect(released.code).toBe(0);
    expect(released.stdout).toMatch(/released to frank@example\.com: queued as \w+; the running Postern's relay picks it up within a second/);
    await until(() => bySubject('cli held').length === 1, 10_000, 'the copy released from the command line');
    expect(bySubject('cli held')[0].to).toEqual(['frank@example.com']);
    const again = await cli('quarantine', 'release', fid);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is no longer held (released)');
    const none = await cli('quarantine', 'delete', 'Qnope.x@example.com');
    expect(none.code).toBe(1);
    expect(none.stderr).toBe('postern: no quarantined message Qnope.x@example.com\n');

    const gid = `${id}.grace@example.com`;
    expect((await cli('quarantine', 'block', gid, '--scope', 'planet')).code).toBe(64);
    expect((await cli('quarantine', 'report', gid)).stderr).toContain('report needs exactly one of --spam or --ham');
    expect((await cli('quarantine', 'frobnicate')).code).toBe(64);
    const spam = await cli('quarantine', 'report', gid, '--spam');
    expect(spam).toMatchObject({ code: 0, stdout: `${gid} learned as spam\n` });
    const del = await cli('quarantine', 'delete', gid);
    expect(del).toMatchObject({ code: 0, stdout: `${gid} deleted\n` });
    expect((await cli('quarantine', 'purge')).code).toBe(0);

    const events = await p.app.store.db.selectFrom('events').select(['type', 'data']).where('type', 'in', ['quarantine.released', 'quarantine.deleted', 'quarantine.reported']).execute();
    const actors = events.map((e) => (JSON.parse(e.data) as { by: string }).by);
    expect(actors.filter((a) => a === cliActor())).toHaveLength(3);
  });
});
