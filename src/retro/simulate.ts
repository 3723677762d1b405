// The outbreak simulation: a campaign of variants (names, numbers, greetings, links and wording changed in each),
// each from its own loopback source address, interleaved with ordinary mail, sent over real sockets through a
// running gateway. Then, from the store: when the cluster was declared, how many copies had been delivered before,
// how long the pull-back of the delivered copies took, and whether any ordinary message was held.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import { SimClient, code } from '../trends/sim-client.ts';

export interface OutbreakSimOptions {
  host: string;
  port: number;
  /** A domain the gateway accepts, and existing recipients in it. */
  domain: string;
  known: string[];
  /** Campaign variants to send (40), and ordinary messages after each (1). */
  variants: number;
  ordinaryPerVariant: number;
  /** First three octets of the campaign's sources (each variant its own address) and of the ordinary senders'. */
  attackerNet: string;
  legitNet: string;
  /** Pause between two messages sent, in ms. */
  paceMs: number;
  /** How long to wait, after the last message, for delivered copies to be pulled back. */
  settleMs: number;
  onStep?: (line: string) => void;
}

export interface OutbreakReport {
  scenario: 'outbreak';
  campaign: { sent: number; accepted: number; refused: number; deferred: number };
  ordinary: { sent: number; accepted: number; refused: number; deferred: number };
  /** The campaign's cluster (the one most of its copies are in), and when it was declared. */
  cluster: number | null;
  declared_at: string | null;
  declared_after_variants: number | null;
  /** Copies the relay delivered before the declaration. */
  delivered_before_declaration: number;
  /** Copies delivered at any time, and of them pulled back. */
  delivered: number;
  pulled_back: number;
  /** From the declaration to the last delivered copy pulled back, in ms; null when none needed pulling back. */
  pullback_ms: number | null;
  /** Copies held in line: quarantined at the gateway without ever being delivered. */
  held_in_line: number;
  /** Ordinary messages held, refused or pulled back, with their subjects. */
  ordinary_held: string[];
  targets: { delivered_before_declaration: boolean; pullback_within_5s: boolean; no_ordinary_held: boolean };
}

const pick = <T>(a: readonly T[], i: number): T => a[i % a.length];
const hex = (n: number) => randomBytes(n).toString('hex');

const FIRST = ['Anna', 'Ben', 'Carla', 'David', 'Elena', 'Frank', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Klara', 'Luis', 'Mona', 'Nils'];
const GREET = ['Dear', 'Hello', 'Hi'];
const FILES = ['Payment schedule', 'Remittance advice', 'Payment advice'];

/**
 * One variant of the campaign: a "document shared with you" lure pointing at a freshly registered host, the kind
 * that content checks alone find only somewhat suspicious. Names, numbers, greeting, file name, link host and some
 * words change from copy to copy, as real campaigns do to slip past exact signatures.
 */
export function campaignVariant(i: number, rcpt: string, domain: string): { from: string; subject: string; body: string } {
  const senderDomain = `${pick(['docs-share', 'filetransfer', 'secure-docs', 'cloud-files'], i)}-${hex(2)}.com`;
  const name = `${pick(FIRST, i)} ${pick(['Meyer', 'Novak', 'Rossi', 'Berg', 'Costa', 'Weber'], i + 1)}`;
  const from = `notify${i}@${senderDomain}`;
  const file = `${pick(FILES, i)} ${1000 + i * 7}.pdf`;
  const link = `http://${hex(3)}.${senderDomain}/s/${hex(6)}`;
  const first = rcpt.split('@')[0];
  const text = `${pick(GREET, i)} ${first},

${name} has shared a document with you: "${file}".

View the document here: ${link}

The document was shared through our secure file service because it contains confidential payment details. It can only be viewed by the recipient of this message, and it cannot be forwarded or printed.

This link will ${pick(['expire', 'be disabled'], i)} in ${pick(['7', '5', '3'], i)} days. To open it, please verify your account with your ${domain} email password. If you do not open the document before then, the sender will be told that it was not received.

Thank you,
The Document Sharing Team`;
  const html = `<html><body><p>${pick(GREET, i)} ${first},</p><p>${name} has shared a document with you: <b>${file}</b></p>
<p><a href="${link}">https://drive.google.com/file/d/${hex(8)}/view</a></p>
<p>The document was shared through our secure file service because it contains confidential payment details. It can only be viewed by the recipient of this message, and it cannot be forwarded or printed.</p>
<p>This link will ${pick(['expire', 'be disabled'], i)} in ${pick(['7', '5', '3'], i)} days. To open it, please verify your account with your ${domain} email password. If you do not open the document before then, the sender will be told that it was not received.</p>
<p>Thank you,<br>The Document Sharing Team</p></body></html>`;
  const boundary = `b${hex(6)}`;
  const body = [
    `From: "${name} via Docs" <${from}>`,
    `To: <${rcpt}>`,
    `Subject: ${name} shared "${file}" with you`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${hex(8)}.${i}@${senderDomain}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    text,
    `--${boundary}`,
    'Content-Type: text/html; charset=utf-8',
    '',
    html,
    `--${boundary}--`,
  ].join('\n');
  return { from, subject: `${name} shared "${file}" with you`, body };
}

const TOPICS = [
  ['Minutes of the Tuesday planning meeting', 'Attached you will find the notes from our planning meeting. We agreed to move the release review to next week and to invite the design team.'],
  ['Question about the quarterly budget', 'Could you check whether the travel line in the quarterly budget includes the conference in May? Finance asked me before Friday.'],
  ['Lunch on Thursday?', 'A few of us are going to the new place on the corner on Thursday around noon. Let me know if you want to join and I will reserve a table.'],
  ['Draft contract for the warehouse lease', 'Our lawyer sent back the draft with two changes to the termination clause. Please read section 7 and tell me whether the notice period works for you.'],
  ['Server maintenance window this weekend', 'The storage cluster will be patched on Saturday between six and eight in the morning. Shares may be unavailable for a few minutes during the reboot.'],
  ['Interview schedule for the backend position', 'We have three candidates next week. I put them in the shared calendar; please pick the slots you can attend and add your questions to the document.'],
  ['Invoice dispute with the printing supplier', 'The supplier billed the brochures twice. I have asked them for a credit note and will forward it to accounting when it arrives.'],
  ['Photos from the team offsite', 'The photos from the offsite are in the shared folder now. Thanks again to everyone who helped with the boat trip and the barbecue.'],
  ['Reminder: safety training next month', 'Everyone working in the lab must renew the safety training by the end of next month. Sessions run every Wednesday afternoon.'],
  ['Feedback on the onboarding guide', 'I read the new onboarding guide and left comments on the parts about accounts and building access. Overall it reads well.'],
  ['Parking during the construction works', 'From Monday the east car park is closed for resurfacing. The company has rented spaces in the garage on Mill Street until the end of the month.'],
  ['Customer visit from the Rotterdam office', 'Two colleagues from the Rotterdam office visit us on the twelfth. Could you show them the production line after lunch?'],
] as const;

/** An ordinary message: one of several everyday topics, with its own names and details. */
export function ordinaryMessage(i: number, rcpt: string): { from: string; subject: string; body: string } {
  const [subject, text] = pick(TOPICS, i);
  const name = pick(FIRST, i + 3);
  const senderDomain = `${pick(['northwind', 'contoso', 'fabrikam', 'tailspin', 'litware', 'adventure-works'], i)}.example`;
  const from = `${name.toLowerCase()}@${senderDomain}`;
  const body = [
    `From: ${name} <${from}>`,
    `To: <${rcpt}>`,
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${hex(8)}@${senderDomain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Hi,`,
    '',
    text,
    '',
    `Best regards,`,
    name,
  ].join('\n');
  return { from, subject, body };
}

interface Sent {
  kind: 'campaign' | 'ordinary';
  index: number;
  subject: string;
  reply: string;
  id: string | null;
}

async function sendOne(o: OutbreakSimOptions, ip: string, helo: string, from: string, to: string[], body: string): Promise<{ reply: string; id: string | null }> {
  const c = await SimClient.connect(o.host, o.port, ip);
  try {
    const greet = await c.reply();
    if (!greet.startsWith('220')) return { reply: greet, id: null };
    await c.cmd(`EHLO ${helo}`);
    const m = await c.cmd(`MAIL FROM:<${from}>`);
    if (!m.startsWith('250')) return { reply: m, id: null };
    let ok = 0;
    let last = '';
    for (const r of to) {
      last = await c.cmd(`RCPT TO:<${r}>`);
      if (last.startsWith('250')) ok++;
    }
    if (!ok) return { reply: last, id: null };
    const final = await c.data(body);
    return { reply: final, id: /queued as (\S+)/.exec(final)?.[1] ?? null };
  } finally {
    c.quit();
  }
}

/** Sends the campaign and the ordinary mail, then measures from the store what the gateway did. */
export async function simulateOutbreak(o: OutbreakSimOptions, db: Kysely<DB>): Promise<OutbreakReport> {
  const sent: Sent[] = [];
  let ordinal = 0;
  for (let i = 0; i < o.variants; i++) {
    const to = [pick(o.known, i)];
    const v = campaignVariant(i, to[0], o.domain);
    const r = await sendOne(o, `${o.attackerNet}.${10 + (i % 240)}`, `mx${i}.${v.from.split('@')[1]}`, v.from, to, v.body).catch((err: Error) => ({ reply: `error: ${err.message}`, id: null }));
    sent.push({ kind: 'campaign', index: i, subject: v.subject, reply: r.reply, id: r.id });
    o.onStep?.(`campaign ${i + 1}/${o.variants} from ${o.attackerNet}.${10 + (i % 240)}: ${code(r.reply)}`);
    await sleep(o.paceMs);
    for (let k = 0; k < o.ordinaryPerVariant; k++) {
      const rcpt = pick(o.known, ordinal + 2);
      const m = ordinaryMessage(ordinal, rcpt);
      const ip = `${o.legitNet}.${10 + (ordinal % 20)}`;
      const r2 = await sendOne(o, ip, `mail.${m.from.split('@')[1]}`, m.from, [rcpt], m.body).catch((err: Error) => ({ reply: `error: ${err.message}`, id: null }));
      sent.push({ kind: 'ordinary', index: ordinal, subject: m.subject, reply: r2.reply, id: r2.id });
      ordinal++;
      await sleep(o.paceMs);
    }
  }
  const campaignIds = sent.filter((s) => s.kind === 'campaign' && s.id).map((s) => s.id as string);
  const ordinaryIds = sent.filter((s) => s.kind === 'ordinary' && s.id).map((s) => s.id as string);
  const tally = (kind: Sent['kind']) => {
    const list = sent.filter((s) => s.kind === kind);
    return {
      sent: list.length,
      accepted: list.filter((s) => s.reply.startsWith('250')).length,
      refused: list.filter((s) => s.reply.startsWith('5')).length,
      deferred: list.filter((s) => s.reply.startsWith('4')).length,
    };
  };
  // Wait for the relay and the pull-back to settle: every delivered copy pulled back, or the time is up.
  const deadline = Date.now() + o.settleMs;
  let m = await measure(db, campaignIds, ordinaryIds, sent);
  while (Date.now() < deadline && (m.pulled_back < m.delivered || m.cluster === null || m.pending > 0)) {
    await sleep(250);
    m = await measure(db, campaignIds, ordinaryIds, sent);
  }
  const { pending: _pending, ...rest } = m;
  return {
    scenario: 'outbreak',
    campaign: tally('campaign'),
    ordinary: tally('ordinary'),
    ...rest,
    targets: {
      delivered_before_declaration: rest.delivered_before_declaration <= 3,
      pullback_within_5s: rest.pulled_back === rest.delivered && (rest.pullback_ms === null || rest.pullback_ms <= 5_000),
      no_ordinary_held: rest.ordinary_held.length === 0,
    },
  };
}

async function measure(db: Kysely<DB>, campaign: string[], ordinary: string[], sent: Sent[]) {
  const rows = campaign.length ? await db.selectFrom('similarity_entries').select(['id', 'cluster']).where('id', 'in', campaign).execute() : [];
  const counts = new Map<number, number>();
  for (const r of rows) counts.set(Number(r.cluster), (counts.get(Number(r.cluster)) ?? 0) + 1);
  const cluster = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  const declared =
    cluster === null
      ? undefined
      : await db.selectFrom('events').select(['ts', 'data']).where('type', '=', 'outbreak.declared').orderBy('id').execute().then((es) => es.find((e) => (JSON.parse(e.data) as { cluster?: number }).cluster === cluster));
  const declaredAt = declared ? Number(declared.ts) : null;
  const ev = campaign.length
    ? await db.selectFrom('events').select(['ts', 'type', 'msg_id', 'data']).where('type', 'in', ['relay.delivered', 'retro.pulled_back']).where('msg_id', 'in', campaign).execute()
    : [];
  let delivered = 0;
  let before = 0;
  for (const e of ev.filter((x) => x.type === 'relay.delivered')) {
    const n = ((JSON.parse(e.data) as { rcpts?: string[] }).rcpts ?? []).length;
    delivered += n;
    if (declaredAt === null || Number(e.ts) < declaredAt) before += n;
  }
  const pulled = ev.filter((x) => x.type === 'retro.pulled_back');
  const lastPulled = pulled.length ? Math.max(...pulled.map((x) => Number(x.ts))) : null;
  const rcpts = campaign.length ? await db.selectFrom('recipients').select(['msg_id', 'status']).where('msg_id', 'in', campaign).execute() : [];
  const pending = rcpts.filter((r) => r.status === 'queued' || r.status === 'deferred').length;
  const heldInLine = rcpts.filter((r) => r.status === 'quarantined').length;
  const ordinaryBad = ordinary.length
    ? await db.selectFrom('recipients').select(['msg_id']).where('msg_id', 'in', ordinary).where('status', 'in', ['quarantined', 'pulled_back']).execute()
    : [];
  const badIds = new Set(ordinaryBad.map((r) => r.msg_id));
  const ordinaryHeld = sent.filter((s) => s.kind === 'ordinary' && (!s.reply.startsWith('250') || (s.id && badIds.has(s.id)))).map((s) => `${s.subject} (${code(s.reply)})`);
  return {
    cluster,
    declared_at: declaredAt === null ? null : new Date(declaredAt).toISOString(),
    declared_after_variants: declaredAt === null ? null : await membersBefore(db, campaign, declaredAt),
    delivered_before_declaration: before,
    delivered,
    pulled_back: pulled.length,
    pullback_ms: declaredAt !== null && lastPulled !== null ? Math.max(0, lastPulled - declaredAt) : null,
    held_in_line: heldInLine,
    ordinary_held: ordinaryHeld,
    pending,
  };
}

/** Campaign messages the gateway took before the declaration. */
async function membersBefore(db: Kysely<DB>, campaign: string[], at: number): Promise<number> {
  const r = await db.selectFrom('messages').select('id').where('id', 'in', campaign).where('received_at', '<', at).execute();
  return r.length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
