// The quarantine digest end to end: mail held through the gateway (a real SMTP client), the digest received at a
// real SMTP downstream and parsed, its release link followed over HTTP (GET shows a confirmation and changes
// nothing, POST releases), and the original message arriving downstream.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import PostalMime from 'postal-mime';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Received, type Sink } from '../harness/sink.ts';
import { missing } from '../harness/services.ts';
import { inProcess } from '../harness/cli.ts';


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
[quarantine.digest]
timezone = "Europe/Berlin"
[[policy.rules]]
sender = "*@spam.example"
score = 9
`;

const HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(2)>';

const MSG = (from: string, subject: string, messageId: string) =>
  `From: <${from}>\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${messageId}>\r\n\r\nPlease find the offer enclosed.\r\n`;

// The relay removes every X-Postern-* field on the way out (relay/headers.ts), the digest's own marker too; a digest
// is known by its Message-ID and Auto-Submitted.
const isDigest = (m: Received) => /^Message-ID: <digest\./m.test(m.raw.toString()) && /^Auto-Submitted: auto-generated\r?$/m.test(m.raw.toString());

describe.skipIf(await missing('postgres'))('quarantine digest end to end', () => {
  let sink: Sink;
  let p: TestPostern;
  let configFile: string;
  const send = async (from: string, to: string[], subject: string, messageId = `${Math.random().toString(36).slice(2)}@spam.example`) => {
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    const info = await c.sendMail({ envelope: { from, to }, raw: MSG(from, subject, messageId) });
    return /queued as (\w+)/.exec(info.response)![1];
  };
  const heldFor = (rcpt: string) => p.app.store.db.selectFrom('quarantine').selectAll().where('rcpt', '=', rcpt).where('status', '=', 'held').execute();
  const digestsTo = (rcpt: string) => sink.messages.filter((m) => isDigest(m) && m.to.includes(rcpt));
  const cli = (...a: string[]) => inProcess([...a, '--config', configFile]);

  beforeAll(async () => {
    sink = await startSink();
    p = await startTestPostern(toml(sink.port));
    configFile = path.join(p.dir, 'cli.toml');
    const url = p.app.quarantine.deps.config.store.url;
    // The CLI's links must point where this Postern's web server listens.
    fs.writeFileSync(
      configFile,
      `data_dir = ${JSON.stringify(p.dir)}\n${toml(sink.port)}[web]\npublic_url = ${JSON.stringify(p.webUrl)}\n${url ? `[store]\nurl = ${JSON.stringify(url)}\n` : ''}`,
    );
  });
  afterAll(async () => {
    await p?.close();
    await sink?.close();
  });

  it('sends a digest that lists what was held, and its release link releases after confirmation only', async () => {
    expect(p.webUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await send('promo@spam.example', ['alice@example.com'], HOSTILE);
    const wanted = await send('offers@spam.example', ['alice@example.com'], 'Quarterly offer', 'wanted-offer@spam.example');
    // bob gets clean mail, delivered: nothing is held for him.
    await send('colleague@partner.example', ['bob@example.com'], 'lunch');
    await until(async () => (await heldFor('alice@example.com')).length === 2, 10_000, 'two held for alice');
    await until(() => sink.messages.some((m) => m.to.includes('bob@example.com')), 10_000, "bob's clean mail");

    const run = await p.app.digests.run();
    expect(run.sent.map((s) => [s.rcpt, s.entries])).toEqual([['alice@example.com', 2]]);
    const [digest] = await until(() => (digestsTo('alice@example.com').length ? digestsTo('alice@example.com') : undefined), 10_000, 'the digest at the sink');
    expect(digestsTo('bob@example.com')).toEqual([]);
    expect(digest.from).toBe('postmaster@example.com');

    const mail = await PostalMime.parse(digest.raw);
    const header = (name: string) => mail.headers.find((h) => h.key === name)?.value;
    expect(header('auto-submitted')).toBe('auto-generated');
    expect(mail.subject).toBe('Quarantine: 2 messages held for you');
    expect(mail.from?.address).toBe('postmaster@example.com');
    expect(mail.text).toContain('Quarterly offer');
    expect(mail.text).toContain(HOSTILE);
    expect(mail.text).toMatch(/scored 9\.\d \(threshold 8\): looks like spam/);
    expect(mail.text).toMatch(/Received: \d+ \w{3} \d{4}, \d\d:\d\d CET/);
    const html = mail.html!;
    expect(html).toContain('Quarterly offer');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(html).not.toMatch(/<script|<img/i);

    // The Release link of the wanted message's row.
    const row = html.split('<tr>').find((r) => r.includes('Quarterly offer'))!;
    const release = /<a href="([^"]+)"[^>]*>Release<\/a>/.exec(row)![1].replace(/&amp;/g, '&');
    expect(release.startsWith(`${p.webUrl}/q/`)).toBe(true);
    expect(mail.text).toContain(`Release:      ${release}`);

    // A link scanner's GET: a confirmation page, nothing released.
    const get = await fetch(release, { redirect: 'manual' });
    expect(get.status).toBe(200);
    const page = await get.text();
    const token = release.slice(release.lastIndexOf('/') + 1);
    expect(page).toContain(`action="/q/${token}"`);
    expect(page).toMatch(/name="confirm" value="1"/);
    await new Promise((r) => setTimeout(r, 600));
    expect(sink.messages.filter((m) => m.raw.toString().includes('wanted-offer@spam.example'))).toEqual([]);
    expect((await heldFor('alice@example.com')).map((r) => r.msg_id)).toContain(wanted);

    // The person's POST: released, and the original arrives downstream for alice only.
    const post = await fetch(release, { method: 'POST', body: new URLSearchParams({ confirm: '1' }), redirect: 'manual' });
    expect(post.status).toBe(200);
    const arrived = await until(() => sink.messages.find((m) => m.raw.toString().includes('Message-ID: <wanted-offer@spam.example>')), 10_000, 'the released original');
    expect(arrived.to).toEqual(['alice@example.com']);
    expect(arrived.from).toBe('offers@spam.example');
    expect((await PostalMime.parse(arrived.raw)).subject).toBe('Quarterly offer');
    expect((await heldFor('alice@example.com')).map((r) => r.msg_id)).not.toContain(wanted);
  });

  it('sends nothing when nothing new was held, and only the new entries next time', async () => {
    const before = sink.messages.filter(isDigest).length;
    expect((await p.app.digests.run()).sent).toEqual([]);
    const dry = await cli('digest', 'run', '--json');
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual({ sent: [], skipped: [] });
    expect((await cli('digest', 'preview', '--recipient', 'alice@example.com')).stdout).toBe('nothing held for alice@example.com since their last digest\n');
    expect((await cli('digest', 'run', '--recipient', 'bob@example.com')).stdout).toBe('nothing held for bob@example.com since their last digest\n');

    await send('late@spam.example', ['alice@example.com'], 'Late offer');
    await until(async () => (await heldFor('alice@example.com')).some((r) => r.subject === 'Late offer'), 10_000, 'the late offer held');
    const preview = await cli('digest', 'preview', '--recipient', 'alice@example.com');
    expect(preview.stdout).toContain('Subject: Quarantine: 1 message held for you');
    expect(preview.stdout).toContain('Late offer');
    expect(preview.stdout).not.toContain('Quarterly offer');
    // A preview sends and records nothing.
    await new Promise((r) => setTimeout(r, 400));
    expect(sink.messages.filter(isDigest)).toHaveLength(before);

    const sent = await cli('digest', 'run', '--recipient', 'alice@example.com');
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/^alice@example\.com: digest of 1 held message\(s\) queued as \w+/);
    await until(() => sink.messages.filter(isDigest).length === before + 1, 10_000, 'the second digest');
    const second = await PostalMime.parse(sink.messages.filter(isDigest).at(-1)!.raw);
    expect(second.text).toContain('Late offer');
    expect(second.text).not.toContain('Quarterly offer');
    // The CLI signs with the running Postern's key: its links open there.
    const view = /Open your quarantine: (\S+)/.exec(second.text!)![1];
    const opened = await fetch(view, { redirect: 'manual' });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe('/quarantine');
    expect((await p.app.digests.run()).sent).toEqual([]);
  });

  it('of two runs at once, exactly one sends', async () => {
    await send('promo@spam.example', ['carol@example.com'], 'race');
    await until(async () => (await heldFor('carol@example.com')).length === 1, 10_000, 'held for carol');
    const runs = await Promise.all([p.app.digests.run(), p.app.digests.run(), p.app.digests.run()]);
    expect(runs.flatMap((r) => r.sent).map((s) => s.rcpt)).toEqual(['carol@example.com']);
    // The others read the same digest_state and lost the claim (or, started late, found nothing new).
    expect(runs.flatMap((r) => r.skipped).every((k) => k.reason === 'sent by another node meanwhile')).toBe(true);
    await until(() => digestsTo('carol@example.com').length === 1, 10_000, "carol's digest");
    await new Promise((r) => setTimeout(r, 500));
    expect(digestsTo('carol@example.com')).toHaveLength(1);
    await p.app.sink.flush();
    const events = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'quarantine.digest_sent').execute();
    expect(events.map((e) => (JSON.parse(e.data) as { rcpt: string }).rcpt).sort()).toEqual(['alice@example.com', 'alice@example.com', 'carol@example.com']);
  });
});

describe.skipIf(await missing('postgres'))('quarantine digest schedule', () => {
  it('sends on the cron schedule of a running Postern', async () => {
    const sink = await startSink();
    // Every second (croner's optional seconds field), in a zone other than UTC.
    const p = await startTestPostern(toml(sink.port).replace('timezone = "Europe/Berlin"', 'timezone = "America/New_York"\nschedule = "* * * * * *"'));
    try {
      const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
      await c.sendMail({ envelope: { from: 'promo@spam.example', to: ['zoe@example.com'] }, raw: MSG('promo@spam.example', 'scheduled', 'scheduled@spam.example') });
      const d = await until(() => sink.messages.find((m) => isDigest(m) && m.to.includes('zoe@example.com')), 10_000, 'the scheduled digest');
      const mail = await PostalMime.parse(d.raw);
      expect(mail.text).toContain('scheduled');
      expect(mail.text).toMatch(/Received: .* GMT-5/);
      // The next runs find nothing new.
      await new Promise((r) => setTimeout(r, 2_200));
      expect(sink.messages.filter((m) => isDigest(m))).toHaveLength(1);
    } finally {
      await p.close();
      await sink.close();
    }
  });

  it('with the default local mailbox store, puts the digest and the released copy in the Maildir', async () => {
    const p = await startTestPostern(`
[gateway]
domains = ["example.com"]
[quarantine.digest]
enabled = false
[[policy.rules]]
sender = "*@spam.example"
action = "quarantine"
`);
    try {
      const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
      await c.sendMail({ envelope: { from: 'offers@spam.example', to: ['yann@example.com'] }, raw: MSG('offers@spam.example', 'Maildir offer', 'maildir@spam.example') });
      const [held] = (await p.app.quarantine.list({ rcpt: 'yann@example.com' })).entries;
      expect(held).toBeDefined();
      expect(await p.app.maildir.list('yann@example.com')).toEqual([]);
      const run = await p.app.digests.run();
      expect(run.sent.map((s) => s.rcpt)).toEqual(['yann@example.com']);
      const files = await until(async () => {
        const f = await p.app.maildir.list('yann@example.com');
        return f.length ? f : undefined;
      }, 10_000, 'the digest in the Maildir');
      const digest = await PostalMime.parse(fs.readFileSync(files[0]));
      expect(digest.subject).toMatch(/quarantine/i);
      expect(digest.text).toContain('Maildir offer');
      await p.app.quarantine.release(held.id, 'cli:test');
      await until(async () => ((await p.app.maildir.list('yann@example.com')).length === 2 ? true : undefined), 10_000, 'the released copy in the Maildir');
      const bodies = (await p.app.maildir.list('yann@example.com')).map((f) => fs.readFileSync(f, 'utf8'));
      expect(bodies.some((b) => b.includes('Message-ID: <maildir@spam.example>') && b.includes('Please find the offer enclosed.'))).toBe(true);
    } finally {
      await p.close();
    }
  });

  it('refuses a bad cron expression or time zone at config check, naming the key', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-digest-'));
    try {
      const file = path.join(dir, 'postern.toml');
      fs.writeFileSync(file, `data_dir = ${JSON.stringify(dir)}\n[quarantine.digest]\nschedule = "0 25 * * *"\ntimezone = "Europe/Atlantis"\n`);
      const r = await inProcess(['config', 'check', file]);
      expect(r.code).toBe(78);
      expect(r.stderr).toContain('quarantine.digest.schedule: "0 25 * * *" is not a cron expression such as "0 8 * * 1-5"');
      expect(r.stderr).toContain('quarantine.digest.timezone: "Europe/Atlantis" is not an IANA time zone');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
