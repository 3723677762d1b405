// Renders a sample quarantine digest (fixed entries, the real renderer) to docs/images/digest.html and takes a PNG
// screenshot of it in Chromium (npm run docs:screenshots), for docs/quarantine.md.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { parseConfigText } from '../src/config/load.ts';
import { renderDigest, type DigestLinks } from '../src/quarantine/digest-render.ts';
import type { QuarantineEntry } from '../src/quarantine/service.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'docs', 'images');
const NOW = Date.UTC(2026, 10, 30, 7, 0, 0);
const RCPT = 'anna.berg@example.com';

const config = parseConfigText(
  `data_dir = "/nonexistent"\n[quarantine.digest]\ntimezone = "Europe/Berlin"\nmax_entries = 4\n[web]\npublic_url = "https://mail-gw.example.com"\n`,
  'sample.toml',
);

const sample = (n: number, sender: string, subject: string, minutesAgo: number, reason: string, score: number, symbols: QuarantineEntry['symbols']): QuarantineEntry => ({
  id: `SAMPLE${n}.${RCPT}`,
  msg_id: `SAMPLE${n}`,
  rcpt: RCPT,
  sender,
  subject,
  reason,
  score,
  symbols,
  policies: [],
  size: 20_000,
  created_at: NOW - minutesAgo * 60_000,
  expires_at: NOW - minutesAgo * 60_000 + config.quarantine.retention_days * 86_400_000,
  status: 'held',
  acted_at: null,
  acted_by: null,
});

const entries = [
  sample(1, 'billing@paypa1-secure.example', 'Your account has been limited – confirm now', 35, 'score 14.20', 14.2, [
    { name: 'BAYES_SPAM_99', score: 7 },
    { name: 'URL_IP_LITERAL', score: 3 },
    { name: 'DMARC_POLICY_REJECT', score: 3 },
  ]),
  sample(2, 'newsletter@deals.example', 'Black Friday: 80% off everything', 180, 'score 9.10', 9.1, [
    { name: 'BAYES_SPAM_90', score: 3 },
    { name: 'SUBJ_ALL_CAPS', score: 2.5 },
  ]),
  sample(3, 'j.doe@supplier.example', 'Invoice 2026-1142 (PDF)', 600, 'source blocked for harvesting', 0.4, []),
  sample(4, '', 'Undelivered Mail Returned to Sender', 900, 'rule *@example.com / <> → quarantine', 0, []),
  sample(5, 'promo@shop.example', 'Last chance', 1400, 'score 8.30', 8.3, []),
  sample(6, 'promo@shop.example', 'Your cart is waiting', 1500, 'score 8.10', 8.1, []),
];

const link = (what: string, n: number) => `https://mail-gw.example.com/q/${what}-sample-token-${n}`;
const links: DigestLinks = {
  quarantine: link('view', 0),
  entries: Object.fromEntries(entries.map((e, i) => [e.id, { release: link('release', i), delete: link('delete', i), allow: link('allow', i), view: link('view', i) }])),
};

const digest = renderDigest({ rcpt: RCPT, entries, links, config, now: NOW });
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'digest.html'), digest.html);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 720, height: 900 }, deviceScaleFactor: 1 });
  await page.setContent(digest.html, { waitUntil: 'load' });
  await page.screenshot({ path: path.join(out, 'digest.png'), fullPage: true });
} finally {
  await browser.close();
}
console.log(`wrote ${path.relative(root, path.join(out, 'digest.html'))} and ${path.relative(root, path.join(out, 'digest.png'))}`);
