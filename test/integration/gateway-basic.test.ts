// The gateway end to end over real sockets: nodemailer in, a real SMTP/LMTP server or the Maildirs out.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { findTrace } from '../../src/cli/trace.ts';
import { missing } from '../harness/services.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function client(port: number) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, tls: { rejectUnauthorized: false } });
}

async function withPostern(toml = ''): Promise<TestPostern> {
  const p = await startTestPostern(toml);
  cleanup.push(() => p.close());
  return p;
}

async function withSink(lmtp = false): Promise<Sink> {
  const s = await startSink({ lmtp });
  cleanup.push(() => s.close());
  return s;
}

describe.skipIf(await missing('postgres'))('gateway', () => {
  it('delivers to the local Maildir when no downstream is configured', async () => {
    const p = await withPostern();
    const info = await client(p.port).sendMail({ from: 'alice@example.org', to: 'bob@localhost', subject: 'hello', text: 'hi\n', messageId: '<m1@example.org>' });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{20}$/);
    const files = await until(async () => {
      const f = await p.app.maildir.list('bob@localhost');
      return f.length ? f : null;
    });
    const body = fs.readFileSync(files[0], 'utf8');
    expect(body).toMatch(/^Received: from \[127\.0\.0\.1\]/);
    expect(body).toContain('Subject: hello');
    const trace = await until(async () => {
      await p.app.sink.flush();
      const t = await findTrace(p.app.store, '<m1@example.org>');
      return t && t.events.some((e) => e.type === 'relay.attempt') ? t : null;
    });
    expect(trace.recipients[0]).toMatchObject({ rcpt: 'bob@localhost', status: 'delivered', action: 'accept' });
    expect(trace.events.map((e) => e.type)).toEqual(expect.arrayContaining(['smtp.connect', 'smtp.rcpt.accepted', 'message.accepted', 'relay.attempt']));
  });

  it('relays to an SMTP downstream and to an LMTP downstream', async () => {
    for (const lmtp of [false, true]) {
      const sink = await withSink(lmtp);
      const p = await withPostern(`[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\nprotocol = "${lmtp ? 'lmtp' : 'smtp'}"\ntls = "none"\n`);
      await client(p.port).sendMail({ from: 'alice@example.org', to: ['bob@localhost', 'carol@localhost'], subject: 'relay', text: 'x' });
      await until(() => sink.messages.length === 1, 10_000, 'downstream delivery');
      expect(sink.messages[0].to.sort()).toEqual(['bob@localhost', 'carol@localhost']);
      expect(sink.messages[0].from).toBe('alice@example.org');
    }
  });

  it('refuses relaying and unknown recipients at RCPT, and records them', async () => {
    const p = await withPostern('[gateway]\ndomains = ["localhost", "example.com"]\nrecipients = ["bob@example.com"]\n');
    const c = client(p.port);
    await expect(c.sendMail({ from: 'a@example.org', to: 'x@other.org', text: 'x' })).rejects.toMatchObject({ response: '554 5.7.1 Relay access denied' });
    await expect(c.sendMail({ from: 'a@example.org', to: 'nobody@example.com', text: 'x' })).rejects.toMatchObject({ response: '550 5.1.1 No such recipient here' });
    const ok = await c.sendMail({ from: 'a@example.org', to: 'bob@example.com', text: 'x' });
    expect(ok.accepted).toEqual(['bob@example.com']);
    await p.app.sink.flush();
    const rows = await p.app.store.db.selectFrom('events').select(['type', 'data']).where('type', '=', 'smtp.rcpt.rejected').execute();
    expect(rows.map((r) => JSON.parse(r.data).reason).sort()).toEqual(['relay_denied', 'unknown_recipient']);
  });

  it('tags, quarantines and rejects by score thresholds', async () => {
    // Analysed in a thread, as a gateway does by default (analysis.threads).
    const p = await withPostern('[analysis]\nthreads = 1\nsubject_prefix = "[SPAM]"\n[analysis.actions]\ntag = 1\nquarantine = 3\nreject = 6\n');
    const c = client(p.port);
    // No Date and no Message-ID: HDR_DATE_MISSING (1.5) + HDR_MSGID_MISSING (1) = 2.5 → tag.
    const raw = (extra: string) => `From: a@example.org\r\nTo: t@localhost\r\nSubject: s\r\n${extra}\r\nbody\r\n`;
    await c.sendMail({ envelope: { from: 'a@example.org', to: ['t@localhost'] }, raw: raw('') });
    const tagged = await until(async () => (await p.app.maildir.list('t@localhost'))[0]);
    const text = fs.readFileSync(tagged, 'utf8');
    expect(text).toMatch(/^X-Postern-Score: 2\.50\r\nX-Postern-Symbols: .*HDR_DATE_MISSING/);
    expect(text).toContain('Subject: [SPAM] s');
    // + no From: 3 more → 5.5 → quarantine.
    const q = await c.sendMail({ envelope: { from: 'a@example.org', to: ['q@localhost'] }, raw: 'To: q@localhost\r\nSubject: s\r\n\r\nbody\r\n' });
    expect(q.response).toMatch(/^250 /);
    const qrow = await until(() => p.app.store.db.selectFrom('quarantine').selectAll().where('rcpt', '=', 'q@localhost').executeTakeFirst());
    expect(qrow.status).toBe('held');
    // + two From headers → reject.
    await expect(
      c.sendMail({ envelope: { from: 'a@example.org', to: ['r@localhost'] }, raw: 'From: a@x.org\r\nFrom: b@y.org\r\nSubject: s\r\n\r\nbody\r\n' }),
    ).rejects.toMatchObject({ responseCode: 554 });
  });
});
