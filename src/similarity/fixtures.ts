// Test and benchmark material for the similarity index: campaigns of variants made from the threat fixtures, as a
// campaign's sender varies them (recipient names, greetings, numbers, a few words, attachment names and bytes), and
// the unrelated real mail they must stay apart from (clean and business fixtures, SpamAssassin ham).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { buildMessageView } from '../analysis/message-view.ts';
import { corpus, readCorpusItem } from '../../scripts/corpus.ts';
import { zip } from '../../test/fixtures/files.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(root, 'test/fixtures');

/** A small deterministic generator (mulberry32), so every run builds the same variants. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Alice', 'Bob', 'Carmen', 'Dmitri', 'Elena', 'Farid', 'Greta', 'Hiroshi', 'Ines', 'Jonas', 'Kavya', 'Lars', 'Mona', 'Nils', 'Olga', 'Pavel'];
const LAST = ['Martin', 'Schulz', 'Okafor', 'Novak', 'Rossi', 'Larsen', 'Tanaka', 'Dubois', 'Haddad', 'Keller', 'Silva', 'Moreau'];
const GREETINGS = ['Dear {name},', 'Hello {name},', 'Hi {first},', 'Good morning {first},', 'Dear customer,', 'Hello,'];
// Word swaps a campaign's template engine makes ("spintax"): each variant takes a few.
const SWAPS: [RegExp, string[]][] = [
  [/\battached\b/, ['enclosed', 'included', 'attached below']],
  [/\bplease\b/i, ['kindly', 'please do']],
  [/\bnow\b/, ['currently', 'by now']],
  [/\bcheck\b/, ['verify', 'review']],
  [/\baccount\b/, ['profile', 'account']],
  [/\bdocument\b/, ['file', 'paperwork']],
  [/\bview\b/, ['see', 'read']],
  [/\bconfirm\b/, ['verify', 'validate']],
];
const DOMAINS = ['mailer-hub.net', 'secure-notify.com', 'cloud-invoices.org', 'ship-track.info', 'acc-service.biz', 'docs-share.co'];

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const digits = (r: () => number, n: number) => Array.from({ length: n }, () => Math.floor(r() * 10)).join('');

export interface Template {
  name: string;
  subject: string;
  text: string;
  html?: string;
  attachments: { filename: string; contentType: string; content: Buffer }[];
}

/** A threat fixture taken apart into what a variant re-assembles. */
export async function template(file: string): Promise<Template> {
  const raw = fs.readFileSync(path.join(FIXTURES, 'threats', file));
  const { email } = await (await buildMessageView(raw)).parse();
  if (!email) throw new Error(`${file}: not parsed`);
  return {
    name: file,
    subject: email.subject ?? '',
    text: email.text ?? '',
    ...(email.html && { html: email.html }),
    attachments: email.attachments.map((a) => ({
      filename: a.filename ?? 'file.bin',
      contentType: a.mimeType,
      content: Buffer.from(a.content as ArrayBuffer),
    })),
  };
}

/** Replaces each run of digits with random digits of the same length. */
const renumber = (r: () => number, s: string) => s.replace(/\d+/g, (m) => digits(r, m.length));

/** One variant of a template, as raw message bytes. */
export async function variant(t: Template, seed: number): Promise<Buffer> {
  const r = rng(seed);
  const first = pick(r, FIRST);
  const name = `${first} ${pick(r, LAST)}`;
  const greeting = pick(r, GREETINGS).replace('{name}', name).replace('{first}', first);
  const vary = (s: string): string => {
    let out = renumber(r, s).replace(/^\s*(dear|hello|hi|good morning)\b[^\n]*\n/i, '');
    for (const [re, alts] of SWAPS) if (r() < 0.35) out = out.replace(re, pick(r, alts));
    return out;
  };
  const text = `${greeting}\n\n${vary(t.text)}`;
  const html = t.html && `<p>${greeting}</p>${vary(t.html)}`;
  const attachments = await Promise.all(
    t.attachments.map(async (a) => {
      // Half the copies carry a file changed by a few bytes, so no exact hash ties the campaign together.
      const changed = r() < 0.5;
      let content = a.content;
      if (changed && a.contentType === 'application/zip') content = await zip([[`${renumber(r, 'Shipment_0000000000')}.exe`, Buffer.concat([Buffer.from('MZ'), Buffer.from(digits(r, 64))])]]);
      else if (changed) content = Buffer.concat([a.content, Buffer.from(digits(r, 16))]);
      return { filename: renumber(r, a.filename), contentType: a.contentType, content };
    }),
  );
  const domain = pick(r, DOMAINS);
  const mail = new MailComposer({
    from: `${pick(r, FIRST)} <no-reply@${domain}>`,
    to: `${name} <${first.toLowerCase()}.${digits(r, 2)}@example.com>`,
    subject: renumber(r, t.subject),
    messageId: `<${digits(r, 12)}@${domain}>`,
    date: new Date(Date.UTC(2025, 10, 20, 8, Math.floor(r() * 60))),
    text,
    ...(html && { html }),
    attachments,
  });
  return mail.compile().build();
}

/** The unrelated real messages: every clean and business fixture, and `ham` messages of SpamAssassin's ham folders. */
export function unrelatedMail(ham: number): { name: string; raw: Buffer }[] {
  const out: { name: string; raw: Buffer }[] = [];
  for (const dir of ['clean', 'business']) {
    for (const f of fs.readdirSync(path.join(FIXTURES, dir)).sort()) if (f.endsWith('.eml')) out.push({ name: `${dir}/${f}`, raw: fs.readFileSync(path.join(FIXTURES, dir, f)) });
  }
  const items = corpus().filter((it) => it.cls === 'ham');
  // Spread evenly over the whole folders (easy and hard ham, every list they hold), not the first files only.
  for (let k = 0; k < Math.min(ham, items.length); k++) {
    const it = items[Math.floor((k * items.length) / Math.min(ham, items.length))];
    out.push({ name: `${it.folder}/${it.name}`, raw: readCorpusItem(it) });
  }
  return out;
}
