// Clustering quality on real bytes: campaigns of generated variants of threat fixtures must each form one cluster,
// and unrelated real mail (clean and business fixtures, 600 SpamAssassin ham messages, one copy of each other threat
// fixture) must neither join them nor be merged among itself. Measured as pairwise precision and recall of the clustering against the true grouping.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMessageView } from '../analysis/message-view.ts';
import { configSchema } from '../config/schema.ts';
import { fingerprintOf, type Fingerprint } from './fingerprint.ts';
import { indexOptionsOf, SimilarityIndex } from './index.ts';
import { FIXTURES, rng, template, unrelatedMail, variant } from './fixtures.ts';

const CAMPAIGNS = ['macro-doc.eml', 'exe-in-zip.eml', 'lookalike-brand-phish.eml', 'credential-form-attachment.eml'];
const VARIANTS = 25;
const HAM = 600;

/**
 * Messages the fixtures give one same file, byte for byte (one PE, one PDF made by the fixture generator): linking
 * those is what the exact hashes are for, so they are one group in the truth. The test checks that they do share it.
 */
const SAME_FILE: Record<string, string> = {
  'threats/double-extension.eml': 'exe-in-zip.eml',
  'business/tailspin-bank-details.eml': 'fixture-pdf',
  'business/adatum-quote-reply.eml': 'fixture-pdf',
  'business/contoso-invoice-reminder.eml': 'fixture-pdf',
  'clean/invoice-pdf.eml': 'fixture-pdf',
};

/** The corpus holds a few messages twice (a feed item delivered again): the same body, byte for byte, is one group. */
function bodyDigest(raw: Buffer): string {
  const sep = raw.indexOf('\n\n') >= 0 ? raw.indexOf('\n\n') : raw.indexOf('\r\n\r\n');
  return createHash('sha256').update(raw.subarray(sep < 0 ? 0 : sep).toString('latin1').replace(/\r\n/g, '\n')).digest('hex');
}

interface Item {
  name: string;
  /** The true group: the campaign's template, or the message's own name. */
  truth: string;
  fp: Fingerprint;
}

const items: Item[] = [];

beforeAll(async () => {
  for (const [c, file] of CAMPAIGNS.entries()) {
    const t = await template(file);
    for (let i = 0; i < VARIANTS; i++) {
      const raw = await variant(t, c * 1000 + i);
      items.push({ name: `${file}#${i}`, truth: file, fp: await fingerprintOf(await buildMessageView(raw)) });
    }
  }
  for (const m of unrelatedMail(HAM)) items.push({ name: m.name, truth: SAME_FILE[m.name] ?? bodyDigest(m.raw), fp: await fingerprintOf(await buildMessageView(m.raw)) });
  // The other threat fixtures are other campaigns, some on the same theme ("your mailbox is full"): one copy each.
  for (const f of fs.readdirSync(path.join(FIXTURES, 'threats')).filter((f) => f.endsWith('.eml') && !CAMPAIGNS.includes(f))) {
    items.push({ name: `threats/${f}`, truth: SAME_FILE[`threats/${f}`] ?? f, fp: await fingerprintOf(await buildMessageView(fs.readFileSync(path.join(FIXTURES, 'threats', f)))) });
  }
  // Campaign copies arrive interleaved with ordinary mail, in an order fixed by a seed.
  const r = rng(7);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}, 60_000);

function cluster(): Map<string, number> {
  const index = new SimilarityIndex(indexOptionsOf(configSchema.parse({}).similarity));
  const t0 = Date.UTC(2025, 10, 20);
  items.forEach((it, i) => index.insert(it.name, it.fp, t0 + i * 60_000, { ip: `192.0.2.${i % 250}`, senderDomain: 'example.net', recipients: 1, suspicious: false }));
  return new Map(items.map((it) => [it.name, index.clusterOf(it.name) as number]));
}

describe('clustering campaigns among unrelated mail', () => {
  it('is measured against a truth whose shared-file groups do share a file', () => {
    const files = (it: Item) => new Set([...it.fp.attachments, ...it.fp.members]);
    for (const [name, group] of Object.entries(SAME_FILE)) {
      const it = items.find((x) => x.name === name) as Item;
      const others = items.filter((x) => x.truth === group && x !== it);
      expect(others.some((o) => [...files(o)].some((h) => files(it).has(h))), name).toBe(true);
    }
  });

  it('puts each campaign in one cluster and keeps unrelated mail apart', () => {
    const of = cluster();
    let tp = 0;
    let fp = 0;
    let fn = 0;
    const wrong: string[] = [];
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        const same = of.get(items[i].name) === of.get(items[j].name);
        const truth = items[i].truth === items[j].truth;
        if (same && truth) tp++;
        else if (same) {
          fp++;
          if (wrong.length < 10) wrong.push(`${items[i].name} ~ ${items[j].name}`);
        } else if (truth) fn++;
      }
    }
    const precision = tp / (tp + fp);
    const recall = tp / (tp + fn);
    console.log(`similarity clustering: ${items.length} messages, pairwise precision ${precision.toFixed(4)}, recall ${recall.toFixed(4)}; false pairs: ${wrong.join('; ') || 'none'}`);
    expect(recall).toBeGreaterThanOrEqual(0.98);
    expect(precision).toBeGreaterThanOrEqual(0.99);
    // Each campaign is one cluster that holds nothing else.
    for (const file of CAMPAIGNS) {
      const ids = new Set(items.filter((it) => it.truth === file).map((it) => of.get(it.name)));
      expect(ids.size, file).toBe(1);
      const [id] = ids;
      const strangers = items.filter((it) => it.truth !== file && of.get(it.name) === id).map((it) => it.name);
      expect(strangers, file).toEqual([]);
    }
  });
});
