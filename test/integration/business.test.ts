// Business heuristics end to end over real SMTP, with sender authentication against a fixture DNS server: the
// measured business fixture (test/fixtures/business) is held by content scoring alone; after our users' outbound
// mail went through the outbound listener (and was relayed to the smarthost) and two suppliers are configured as
// partners, the same messages are delivered downstream, while their look-alike versions stay held.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { startFixtureDns, type FixtureDns } from '../harness/dns.ts';
import { missing } from '../harness/services.ts';
import { MESSAGES, PARTNERS, domainOf, learningMail, lookalikeVersion, original, zone, LEARN_MESSAGES } from '../fixtures/business/fixture.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Setup {
  p: TestPostern;
  sink: Sink;
  smarthost: Sink;
  dns: FixtureDns;
}

async function setup(business = ''): Promise<Setup> {
  const dns = await startFixtureDns(zone());
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());
  const smarthost = await startSink();
  cleanup.push(() => smarthost.close());
  const p = await startTestPostern(
    `[gateway]\nhostname = "mx.postern.test"\ndomains = ["fabrikam.com"]\n` +
      `[relay]\nretry_schedule_s = [3600]\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\nprotocol = "smtp"\ntls = "none"\n` +
      `[relay.smarthost]\nhost = "127.0.0.1"\nport = ${smarthost.port}\n` +
      `[outbound]\nenabled = true\nnetworks = ["127.0.0.1/32"]\n` +
      // In an analysis thread: what the outbound listener learns must reach the thread's copy of the correspondents.
      `[analysis]\nthreads = 1\n` +
      `[analysis.checks.auth]\ndns_servers = ["${dns.address}"]\ntimeout_ms = 1000\n${business}`,
  );
  cleanup.push(() => p.close());
  return { p, sink, smarthost, dns };
}

function transport(port: number, helo: string, localAddress?: string) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: helo, localAddress } as Parameters<typeof nodemailer.createTransport>[0]);
}

/** Sends a message to the gateway; returns its recipient's status ('refused' for a 5xx at DATA) and the verdict. */
async function deliver(p: TestPostern, from: string, rcpt: string, raw: Buffer): Promise<{ status: string; score: number; symbols: string[] }> {
  let info: { response: string };
  try {
    info = await transport(p.port, `mail.${domainOf(from)}`).sendMail({ envelope: { from, to: [rcpt] }, raw });
  } catch (err) {
    const e = err as { responseCode?: number };
    if (e.responseCode !== 554) throw err;
    // Refused: the verdict is in the event the gateway wrote for it.
    await p.app.sink.flush();
    const ev = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'smtp.data.rejected').orderBy('id', 'desc').executeTakeFirstOrThrow();
    const data = JSON.parse(ev.data) as { score: number; symbols: { name: string }[] };
    return { status: 'refused', score: data.score, symbols: data.symbols.map((s) => s.name) };
  }
  const qid = /queued as (\w+)/.exec(info.response)![1];
  const row = await p.app.store.db.selectFrom('recipients').selectAll().where('msg_id', '=', qid).executeTakeFirstOrThrow();
  const msg = await p.app.store.db.selectFrom('messages').selectAll().where('id', '=', qid).executeTakeFirstOrThrow();
  const symbols = (JSON.parse(msg.symbols) as { name: string; score: number }[]).map((s) => s.name);
  return { status: row.status, score: Number(msg.score), symbols };
}

const BONUSES = ['KNOWN_CORRESPONDENT', 'KNOWN_CORRESPONDENT_DOMAIN', 'REPLY_TO_SENT', 'PARTNER_DOMAIN', 'TRANSACTIONAL'];

describe.skipIf(await missing('postgres'))('business heuristics through the gateway', () => {
  it('holds the fixture on content alone when nothing is known about its senders', async () => {
    const { p, sink } = await setup();
    for (const m of MESSAGES) {
      const r = await deliver(p, m.from, m.rcpt, original(m));
      expect(r.status, `${m.file} scored ${r.score}: ${r.symbols.join(' ')}`).toBe('quarantined');
      expect(r.score).toBeGreaterThanOrEqual(8);
      // Authenticated, but no history and no partners: nothing to credit.
      expect(r.symbols).toContain('SPF_PASS');
      for (const b of BONUSES) expect(r.symbols).not.toContain(b);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.messages).toHaveLength(0);
  });

  it('learns correspondents from outbound mail, then delivers the fixture and holds its look-alikes', async () => {
    const partners = `[analysis.checks.business]\npartner_domains = ${JSON.stringify(PARTNERS)}\n`;
    const { p, sink, smarthost } = await setup(partners);
    expect(p.app.outbound).not.toBeNull();
    const out = p.app.outbound!;

    // Our users write to their correspondents through the outbound listener; the relay sends it to the smarthost.
    const mail = learningMail();
    for (const m of mail) {
      const info = await transport(out.port, 'exchange.fabrikam.com').sendMail({ envelope: { from: m.from, to: [m.to] }, raw: m.raw });
      expect(info.response).toMatch(/^250 .*queued as/);
    }
    await until(() => smarthost.messages.length === mail.length, 15_000, 'outbound mail at the smarthost');
    expect(smarthost.messages.map((m) => m.to[0]).sort()).toEqual(mail.map((m) => m.to).sort());
    const pairs = await p.app.store.db.selectFrom('correspondents').selectAll().execute();
    expect(pairs.length).toBe(new Set(MESSAGES.map((m) => `${m.rcpt} ${m.from}`)).size);
    for (const r of pairs) expect(Number(r.messages)).toBe(LEARN_MESSAGES);
    const sent = await p.app.store.db.selectFrom('sent_messages').select('message_id').execute();
    expect(sent.map((s) => s.message_id)).toEqual(expect.arrayContaining(MESSAGES.flatMap((m) => m.repliesTo)));

    for (const m of MESSAGES) {
      const r = await deliver(p, m.from, m.rcpt, original(m));
      expect(r.status, `${m.file} scored ${r.score}: ${r.symbols.join(' ')}`).toBe('queued');
      expect(r.score).toBeLessThan(8);
      expect(r.symbols).toContain('KNOWN_CORRESPONDENT');
      if (m.repliesTo.length) expect(r.symbols).toContain('REPLY_TO_SENT');
      if (PARTNERS.includes(domainOf(m.from))) expect(r.symbols).toContain('PARTNER_DOMAIN');
    }
    await until(() => sink.messages.length === MESSAGES.length, 15_000, 'the fixture downstream');

    for (const m of MESSAGES) {
      const l = lookalikeVersion(m);
      const r = await deliver(p, l.from, m.rcpt, l.raw);
      // Held for a person to look at: a look-alike holds the message, and is never by itself the reason for a refusal.
      expect(r.status, `${m.lookalike.domain} (${m.lookalike.how}) scored ${r.score}: ${r.symbols.join(' ')}`).toBe('quarantined');
      // Authenticated by its owner's SPF, and still no bonus: it only looks like someone we know.
      expect(r.symbols).toContain('SPF_PASS');
      expect(r.symbols).toContain(PARTNERS.includes(domainOf(m.from)) ? 'LOOKALIKE_PARTNER' : 'LOOKALIKE_CORRESPONDENT');
      for (const b of BONUSES) expect(r.symbols).not.toContain(b);
    }
    // A quiet invoice, nothing in it that scores, from a partner's look-alike: the look-alike alone holds it.
    const quiet = fs.readFileSync(path.join(import.meta.dirname, '../fixtures/clean/invoice-pdf.eml'), 'latin1').split('contoso-supplies.com').join('contoso-suppiies.com');
    const q = await deliver(p, 'billing@contoso-suppiies.com', 'alice.martin@fabrikam.com', Buffer.from(quiet, 'latin1'));
    expect(q.status, `quiet look-alike scored ${q.score}: ${q.symbols.join(' ')}`).toBe('quarantined');
    expect(q.symbols).toEqual(expect.arrayContaining(['LOOKALIKE_PARTNER', 'SPF_PASS', 'DMARC_PASS']));
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.messages).toHaveLength(MESSAGES.length);
  });

  it('relays only for our senders and clients in outbound.networks', async () => {
    const { p, smarthost } = await setup();
    const out = p.app.outbound!;
    await expect(
      transport(out.port, 'exchange.fabrikam.com').sendMail({ envelope: { from: 'someone@elsewhere.example', to: ['x@contoso-supplies.com'] }, raw: 'Subject: x\r\n\r\nx\r\n' }),
    ).rejects.toMatchObject({ responseCode: 550, response: expect.stringContaining('5.7.1') });
    // 127.0.0.2 is loopback too, but not in networks: refused before the greeting.
    await expect(
      transport(out.port, 'stranger.example', '127.0.0.2').sendMail({ envelope: { from: 'alice.martin@fabrikam.com', to: ['x@contoso-supplies.com'] }, raw: 'Subject: x\r\n\r\nx\r\n' }),
    ).rejects.toMatchObject({ responseCode: 554 });
    const events = await until(
      async () => {
        await p.app.sink.flush();
        const rows = await p.app.store.db.selectFrom('events').select(['type', 'data']).where('type', '=', 'outbound.rejected').execute();
        return rows.length >= 2 ? rows : undefined;
      },
      5_000,
      'outbound.rejected events',
    );
    expect(events.map((e) => JSON.parse(e.data).reason).sort()).toEqual(['client_not_allowed', 'sender_not_ours']);
    // Mail between colleagues relays too (to the downstream), and teaches nothing.
    const info = await transport(out.port, 'exchange.fabrikam.com').sendMail({
      envelope: { from: 'alice.martin@fabrikam.com', to: ['bob.keller@fabrikam.com'] },
      raw: 'From: alice.martin@fabrikam.com\r\nTo: bob.keller@fabrikam.com\r\nSubject: lunch\r\nMessage-ID: <lunch.1@fabrikam.com>\r\n\r\nat noon?\r\n',
    });
    expect(info.response).toMatch(/^250 /);
    expect(await p.app.store.db.selectFrom('correspondents').selectAll().execute()).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(smarthost.messages).toHaveLength(0);
  });
});
