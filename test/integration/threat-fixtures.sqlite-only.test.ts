// The threat and clean-mail fixture set end to end through the real gateway with its default scores: every crafted
// threat (test/fixtures/threats/) is held in quarantine or refused at DATA and never reaches the downstream, every
// piece of clean business mail (test/fixtures/clean/) is delivered untagged, and the stored symbols say why.
// Sender authentication runs against a fixture DNS server with an empty zone, so every lookup answers NXDOMAIN.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { startFixtureDns, type FixtureDns } from '../harness/dns.ts';
import { missing } from '../harness/services.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures');
const ALICE = 'alice.martin@fabrikam.com';

/** Each threat with the symbols that explain why it is held (all must be among the stored symbols). */
const THREATS: Record<string, string[]> = {
  'exe-in-zip.eml': ['ATT_EXECUTABLE'],
  'double-extension.eml': ['ATT_DOUBLE_EXTENSION', 'ATT_EXECUTABLE'],
  'macro-doc.eml': ['ATT_OFFICE_MACRO'],
  'macro-docx-disguised.eml': ['ATT_OFFICE_MACRO', 'ATT_OFFICE_MACRO_DISGUISED'],
  'html-smuggling.eml': ['ATT_HTML_SMUGGLING'],
  'iso-image.eml': ['ATT_DISK_IMAGE'],
  'lnk-shortcut.eml': ['ATT_SCRIPT'],
  'encrypted-zip-password.eml': ['ATT_ARCHIVE_ENCRYPTED', 'ATT_ARCHIVE_PASSWORD_IN_BODY'],
  'ip-literal-phish.eml': ['URL_IP_LITERAL', 'URL_ANCHOR_MISMATCH', 'URL_PHISH_WORDING'],
  'lookalike-brand-phish.eml': ['URL_LOOKALIKE_BRAND', 'URL_IDN_MIXED_SCRIPT', 'URL_PHISH_WORDING'],
  'lookalike-own-domain.eml': ['URL_LOOKALIKE_OWN', 'URL_PHISH_WORDING'],
  'credential-form-attachment.eml': ['ATT_HTML_CREDENTIAL_FORM'],
  'credential-form-body.eml': ['URL_BODY_FORM', 'URL_PHISH_WORDING'],
};
const CLEAN = [
  'invoice-pdf.eml',
  'report-docx.eml',
  'ledger-csv-zip.eml',
  'newsletter.eml',
  'calendar-invite.eml',
  'reply-thread.eml',
  'order-confirmation.eml',
];

interface Fixture {
  file: string;
  raw: Buffer;
  from: string;
  /** The sender's server, from its Received line; it is the HELO name. */
  helo: string;
  messageId: string;
}

function load(dir: 'threats' | 'clean', file: string): Fixture {
  const raw = fs.readFileSync(path.join(FIXTURES, dir, file));
  const head = raw.toString('latin1', 0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1] ?? '';
  const from = /<([^<>]+)>\s*$/.exec(field('From'))?.[1] ?? field('From');
  if (!field('To').includes(ALICE)) throw new Error(`${dir}/${file} is not addressed to ${ALICE}`);
  return { file: `${dir}/${file}`, raw, from, helo: /\bby (\S+)/.exec(field('Received'))![1], messageId: field('Message-ID') };
}

interface Outcome {
  reply: string;
  qid?: string;
}

async function send(port: number, f: Fixture): Promise<Outcome> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: f.helo });
  try {
    const info = await t.sendMail({ envelope: { from: f.from, to: [ALICE] }, raw: f.raw });
    return { reply: info.response, qid: /queued as (\w+)/.exec(info.response)?.[1] };
  } catch (err) {
    const e = err as { responseCode?: number; response?: string; message: string };
    if (!e.responseCode) throw err;
    return { reply: e.response ?? String(e.responseCode) };
  } finally {
    t.close();
  }
}

interface Stored {
  outcome: Outcome;
  score?: number;
  symbols: string[];
  actions: string[];
  statuses: string[];
  quarantined: number;
}

describe.skipIf(await missing('postgres'))('threat and clean-mail fixtures through the gateway', () => {
  let dns: FixtureDns;
  let sink: Sink;
  let p: TestPostern;
  const threats = Object.keys(THREATS).map((f) => load('threats', f));
  const clean = CLEAN.map((f) => load('clean', f));
  const stored = new Map<string, Stored>();

  beforeAll(async () => {
    dns = await startFixtureDns({});
    sink = await startSink();
    p = await startTestPostern(
      `[gateway]\nhostname = "mx.fabrikam.com"\ndomains = ["fabrikam.com"]\n` +
        `[relay]\nretry_schedule_s = [3600]\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\nprotocol = "smtp"\ntls = "none"\n` +
        `[analysis.checks.auth]\ndns_servers = ["${dns.address}"]\ntimeout_ms = 1000\n`,
    );
    const db = p.app.store.db;
    for (const f of [...threats, ...clean]) {
      const outcome = await send(p.port, f);
      const s: Stored = { outcome, symbols: [], actions: [], statuses: [], quarantined: 0 };
      if (outcome.qid) {
        const msg = await db.selectFrom('messages').selectAll().where('id', '=', outcome.qid).executeTakeFirstOrThrow();
        s.score = msg.score;
        s.symbols = (JSON.parse(msg.symbols) as { name: string }[]).map((h) => h.name);
        const rcpts = await db.selectFrom('recipients').selectAll().where('msg_id', '=', outcome.qid).execute();
        s.actions = rcpts.map((r) => r.action);
        s.statuses = rcpts.map((r) => r.status);
        s.quarantined = (await db.selectFrom('quarantine').select('id').where('msg_id', '=', outcome.qid).execute()).length;
      }
      stored.set(f.file, s);
    }
    // A refusal is recorded only as an event, with the symbols that decided it.
    await p.app.sink.flush();
    const refusals = await db.selectFrom('events').selectAll().where('type', '=', 'smtp.data.rejected').execute();
    for (const ev of refusals) {
      const data = JSON.parse(ev.data) as { message_id?: string; score?: number; symbols?: { name: string }[] };
      const f = threats.find((t) => t.messageId === data.message_id);
      const s = f && stored.get(f.file);
      if (s && !s.outcome.qid) {
        s.score = data.score;
        s.symbols = (data.symbols ?? []).map((h) => h.name);
      }
    }
  });

  afterAll(async () => {
    await p?.close();
    await sink?.close();
    await dns?.close();
  });

  it('has an expectation for every fixture file', () => {
    expect(fs.readdirSync(path.join(FIXTURES, 'threats')).sort()).toEqual(Object.keys(THREATS).sort());
    expect(fs.readdirSync(path.join(FIXTURES, 'clean')).sort()).toEqual([...CLEAN].sort());
  });

  it('holds or refuses every threat, with the symbols that explain it', () => {
    const got: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    for (const f of threats) {
      const s = stored.get(f.file)!;
      const held = s.outcome.qid
        ? s.statuses.length === 1 && s.statuses.every((x) => x === 'quarantined') && s.actions.every((a) => a === 'quarantine') && s.quarantined === 1
          ? 'quarantined'
          : `${s.statuses.join(',')} (score ${s.score})`
        : /^5\d\d /.test(s.outcome.reply)
          ? 'refused'
          : s.outcome.reply;
      got[f.file] = { held, symbols: THREATS[path.basename(f.file)].filter((x) => s.symbols.includes(x)) };
      want[f.file] = { held: expect.stringMatching(/^(quarantined|refused)$/), symbols: THREATS[path.basename(f.file)] };
    }
    const seen = Object.fromEntries(threats.map((f) => [f.file, `${stored.get(f.file)!.score}: ${stored.get(f.file)!.symbols.join(' ')}`]));
    expect(got, JSON.stringify(seen, null, 1)).toEqual(want);
  });

  it('delivers every clean message untagged, and no threat reaches the downstream', async () => {
    const byId = (m: { raw: Buffer }) => /^Message-ID:[ \t]*(\S+)/im.exec(m.raw.toString('latin1', 0, 16_384))?.[1];
    await until(() => clean.every((f) => sink.messages.some((m) => byId(m) === f.messageId)), 10_000, 'the clean messages downstream');
    const got: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    for (const f of clean) {
      const s = stored.get(f.file)!;
      const copy = sink.messages.find((m) => byId(m) === f.messageId)!;
      const head = copy.raw.toString('latin1', 0, copy.raw.indexOf('\r\n\r\n'));
      got[f.file] = { reply: s.outcome.reply.slice(0, 3), actions: s.actions, to: copy.to, tagged: /^X-Postern-Score:/im.test(head) };
      want[f.file] = { reply: '250', actions: ['accept'], to: [ALICE], tagged: false };
    }
    const seen = Object.fromEntries(clean.map((f) => [f.file, `${stored.get(f.file)!.score}: ${stored.get(f.file)!.symbols.join(' ')}`]));
    expect(got, JSON.stringify(seen, null, 1)).toEqual(want);
    // The relay polls every 200 ms: give a wrongly queued threat the time to arrive before looking.
    await new Promise((r) => setTimeout(r, 600));
    const threatIds = new Set(threats.map((f) => f.messageId));
    expect(sink.messages.map(byId).filter((id) => id && threatIds.has(id))).toEqual([]);
    expect(sink.messages).toHaveLength(clean.length);
  });

  it('ran every check, sender authentication included, against the fixture DNS', () => {
    for (const f of [...threats, ...clean]) {
      const s = stored.get(f.file)!;
      expect(s.symbols, f.file).not.toContain('CHECK_FAILED');
      expect(s.symbols, f.file).toEqual(expect.arrayContaining(['SPF_NONE', 'DKIM_NONE', 'DMARC_NONE']));
    }
    expect(dns.queries).toEqual(expect.arrayContaining(['harborview-logistics.com TXT', '_dmarc.harborview-logistics.com TXT']));
  });
});
