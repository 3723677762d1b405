// Sender authentication end to end over real SMTP: a fixture DNS server (dns2) publishes SPF, DKIM and DMARC for
// bank.example; a message DKIM-signed with the domain's (test) key goes through the gateway to a downstream sink and
// arrives with our Authentication-Results; a p=reject forgery is held, and refused when the admin says so.
import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { dkimSign } from 'mailauth';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { startFixtureDns, type FixtureDns } from '../harness/dns.ts';
import { missing } from '../harness/services.ts';
import { findTrace } from '../../src/cli/trace.ts';

const KEY_FILE = path.resolve(import.meta.dirname, '../../src/analysis/checks/auth/fixtures/keys/sel1.bank.example.pem');
const privateKey = fs.readFileSync(KEY_FILE, 'utf8').replace(/^#.*\n/, '');
const publicB64 = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64');

// The gateway's clients connect from 127.0.0.1; that is the only address bank.example authorises.
const ZONE = {
  'bank.example': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
  'sel1._domainkey.bank.example': { TXT: [`v=DKIM1; k=rsa; p=${publicB64}`] },
  '_dmarc.bank.example': { TXT: ['v=DMARC1; p=reject'] },
};
const HOST = 'mx.postern.test';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(extra = ''): Promise<{ p: TestPostern; sink: Sink; dns: FixtureDns }> {
  const dns = await startFixtureDns(ZONE);
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());
  const p = await startTestPostern(
    `[gateway]\nhostname = "${HOST}"\n[relay]\nretry_schedule_s = [3600]\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\nprotocol = "smtp"\ntls = "none"\n` +
      `[analysis.checks.auth]\ndns_servers = ["${dns.address}"]\ntimeout_ms = 1000\n${extra}`,
  );
  cleanup.push(() => p.close());
  return { p, sink, dns };
}

function message(from: string, subject: string, extra = ''): string {
  const id = crypto.randomBytes(8).toString('hex');
  return (
    `From: ${from}\r\nTo: Alice <alice@localhost>\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString().replace('GMT', '+0000')}\r\n` +
    `Message-ID: <${id}@bank.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n${extra}\r\n` +
    `Dear Alice,\r\n\r\nyour statement for this month is ready in online banking.\r\n`
  );
}

async function signed(msg: string): Promise<string> {
  const one = { signingDomain: 'bank.example', selector: 'sel1', privateKey };
  const res = await dkimSign(msg, { ...one, signatureData: [one] });
  if (!res.signatures.trim()) throw new Error('not signed');
  return res.signatures + msg;
}

const send = (port: number, from: string, raw: string, localAddress?: string) =>
  nodemailer
    .createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'mail.bank.example', localAddress } as Parameters<typeof nodemailer.createTransport>[0])
    .sendMail({ envelope: { from, to: ['alice@localhost'] }, raw });

function headerBlock(raw: Buffer): string {
  const s = raw.toString('latin1');
  return s.slice(0, s.indexOf('\r\n\r\n') + 2);
}

describe.skipIf(await missing('postgres'))('sender authentication through the gateway', () => {
  it('writes the real SPF, DKIM and DMARC results into Authentication-Results of the relayed copy, and drops forged ones', async () => {
    const { p, sink, dns } = await setup();
    // The sender's own claims under our authserv-id go (also when folded); another host's results stay.
    const forged =
      `Authentication-Results:\r\n ${HOST}; dkim=pass header.d=bank.example; dmarc=pass\r\n` + `Authentication-Results: mx.elsewhere.test; spf=pass smtp.mailfrom=bank.example\r\n`;
    const raw = await signed(message('"Bank Example" <alerts@bank.example>', 'Your statement', forged));
    const info = await send(p.port, 'alerts@bank.example', raw);
    const qid = /queued as (\w+)/.exec(info.response)![1];
    await until(() => sink.messages.length === 1, 10_000, 'the relayed copy');
    const head = headerBlock(sink.messages[0].raw);
    const ours = head.match(/^Authentication-Results: mx\.postern\.test;(?:\r\n[ \t].*)*/gm) ?? [];
    expect(ours).toHaveLength(1);
    const ar = (ours[0] ?? '').replace(/\r\n[ \t]+/g, ' ');
    expect(ar).toMatch(/; spf=pass \(mx\.postern\.test: domain of alerts@bank\.example designates 127\.0\.0\.1 as permitted sender\) smtp\.mailfrom=alerts@bank\.example smtp\.helo=mail\.bank\.example;/);
    expect(ar).toMatch(/; dkim=pass header\.i=@bank\.example header\.s=sel1 header\.a=rsa-sha256 header\.b=\S+;/);
    expect(ar).toMatch(/; dmarc=pass \(p=REJECT\) header\.from=bank\.example/);
    expect(head).not.toContain(`Authentication-Results:\r\n ${HOST}`);
    expect(head).toContain('Authentication-Results: mx.elsewhere.test; spf=pass');
    // An untagged copy has no verdict headers, only the results.
    expect(head).not.toMatch(/^X-Postern-/im);
    // The DNS the check asked was the fixture server's.
    expect(dns.queries).toEqual(expect.arrayContaining(['bank.example TXT', 'sel1._domainkey.bank.example TXT', '_dmarc.bank.example TXT']));
    // The stored decision carries the symbols with their results.
    const t = (await findTrace(p.app.store, qid))!;
    const symbols = t.message!.symbols as { name: string; detail?: string[] }[];
    expect(symbols.map((s) => s.name)).toEqual(expect.arrayContaining(['SPF_PASS', 'DKIM_VALID', 'DMARC_PASS', 'ARC_NONE']));
  });

  it('holds a forgery of a p=reject domain: SPF fail plus DMARC reject policy reach the quarantine threshold', async () => {
    const { p, sink } = await setup();
    const raw = message('"Martin Keller, CEO" <ceo@bank.example>', 'Urgent wire transfer');
    // 127.0.0.2 is not in bank.example's SPF record.
    const info = await send(p.port, 'ceo@bank.example', raw, '127.0.0.2');
    const qid = /queued as (\w+)/.exec(info.response)![1];
    const rows = await p.app.store.db.selectFrom('recipients').selectAll().where('msg_id', '=', qid).execute();
    expect(rows.map((r) => [r.rcpt, r.action, r.status])).toEqual([['alice@localhost', 'quarantine', 'quarantined']]);
    const msg = await p.app.store.db.selectFrom('messages').selectAll().where('id', '=', qid).executeTakeFirstOrThrow();
    expect(msg.score).toBeGreaterThanOrEqual(8);
    const symbols = JSON.parse(msg.symbols) as { name: string; detail?: string[] }[];
    const byName = Object.fromEntries(symbols.map((s) => [s.name, s]));
    expect(byName.SPF_FAIL.detail?.[0]).toMatch(/^spf=fail .* 127\.0\.0\.2 /);
    expect(byName.DMARC_POLICY_REJECT.detail?.[0]).toMatch(/^dmarc=fail \(p=REJECT\) header\.from=bank\.example/);
    expect(byName.DKIM_NONE).toBeDefined();
    await new Promise((r) => setTimeout(r, 400));
    expect(sink.messages).toHaveLength(0);
  });

  it('refuses the forgery at DATA when the admin scores DMARC_POLICY_REJECT as "reject"', async () => {
    const { p } = await setup('[analysis.scores]\nDMARC_POLICY_REJECT = "reject"\n');
    const raw = message('"Martin Keller, CEO" <ceo@bank.example>', 'Urgent wire transfer');
    await expect(send(p.port, 'ceo@bank.example', raw, '127.0.0.2')).rejects.toMatchObject({ response: '554 5.7.1 Message content refused' });
    // The domain's own signed mail still passes.
    const ok = await send(p.port, 'alerts@bank.example', await signed(message('"Bank Example" <alerts@bank.example>', 'Statement')));
    expect(ok.response).toMatch(/^250 /);
  });
});
