// The business heuristics measured (npm run eval:business): each message of test/fixtures/business scanned as the
// gateway would, with sender authentication against a local DNS server that gives every sender domain, real and
// look-alike, an SPF pass. "plain": nothing known of the senders; "heuristics": the history the integration test
// teaches through the outbound listener (five messages from each user to each correspondent, the replied-to ones
// among them) and two partners; "look-alike": the same message from the look-alike domain, with that history.
//
//   npm run eval:business            the table (Markdown)
//   npm run eval:business -- --json  the figures as JSON
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfigText } from '../src/config/load.ts';
import { OfflineScanner, type OfflineResult } from '../src/analysis/offline.ts';
import { CorrespondentBook } from '../src/outbound/correspondents.ts';
import { startFixtureDns } from '../test/harness/dns.ts';
import { MESSAGES, PARTNERS, OUR_DOMAIN, learningMail, lookalikeVersion, original, zone } from '../test/fixtures/business/fixture.ts';

// The client address the offline scan assumes for messages whose Received chain names no public one (offline.ts).
const CLIENT_IP = '203.0.113.25';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { json: { type: 'boolean' } } });
  const dns = await startFixtureDns(zone(CLIENT_IP));
  try {
    const base = `[gateway]\ndomains = ["${OUR_DOMAIN}"]\n[analysis.checks.auth]\ndns_servers = ["${dns.address}"]\n`;
    const now = Date.now();
    const plain = new OfflineScanner({ config: parseConfigText(base, 'eval.toml'), services: { correspondents: new CorrespondentBook(null, { sentRetentionMs: 180 * 86_400_000 }) } });
    const book = new CorrespondentBook(null, { sentRetentionMs: 180 * 86_400_000 });
    for (const m of learningMail()) book.learn(m.from, [m.to], m.messageId, now);
    const withPartners = parseConfigText(`${base}[analysis.checks.business]\npartner_domains = ${JSON.stringify(PARTNERS)}\n`, 'eval.toml');
    const known = new OfflineScanner({ config: withPartners, services: { correspondents: book } });
    const rows = [];
    for (const m of MESSAGES) {
      const raw = original(m);
      const look = lookalikeVersion(m);
      rows.push({
        message: m.file.replace(/\.eml$/, ''),
        plain: brief(await plain.scan(raw)),
        heuristics: brief(await known.scan(raw)),
        lookalike: { domain: m.lookalike.domain, how: m.lookalike.how, ...brief(await known.scan(look.raw)) },
      });
    }
    // A quiet invoice (nothing in it scores) from the look-alike of a correspondent: the look-alike alone must hold it.
    const quiet = fs.readFileSync(path.join(import.meta.dirname, '../test/fixtures/clean/invoice-pdf.eml'), 'latin1');
    const quietLook = brief(await known.scan(Buffer.from(quiet.split('contoso-supplies.com').join('contoso-suppiies.com'), 'latin1')));
    const quietReal = brief(await known.scan(Buffer.from(quiet, 'latin1')));
    if (values.json) {
      console.log(JSON.stringify({ rows, quiet_invoice: { real: quietReal, lookalike: quietLook } }, null, 2));
      return;
    }
    console.log('| message | plain | with heuristics | business symbols | look-alike (how) | look-alike |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.message} | ${r.plain.score} ${r.plain.action} | ${r.heuristics.score} ${r.heuristics.action} | ${r.heuristics.business.join(', ')} | ` +
          `${r.lookalike.domain} (${r.lookalike.how}) | ${r.lookalike.score} ${r.lookalike.action}, ${r.lookalike.business.join(', ')} |`,
      );
    }
    const delivered = rows.filter((r) => r.heuristics.action === 'accept' || r.heuristics.action === 'tag').length;
    const held = rows.filter((r) => r.plain.action === 'quarantine').length;
    const lookHeld = rows.filter((r) => r.lookalike.action === 'quarantine').length;
    console.log(
      `| clean/invoice-pdf (quiet) | - | ${quietReal.score} ${quietReal.action} | ${quietReal.business.join(', ')} | contoso-suppiies.com (l → i) | ${quietLook.score} ${quietLook.action}, ${quietLook.business.join(', ')} |`,
    );
    console.log(`\nplain: ${held}/${rows.length} held; with heuristics: ${delivered}/${rows.length} delivered; look-alikes: ${lookHeld}/${rows.length} held`);
  } finally {
    await dns.close();
  }
}

function brief(r: OfflineResult): { score: number; action: string; business: string[] } {
  const business = r.hits.filter((h) => h.check === 'business').map((h) => `${h.name} ${Math.round(h.score * 100) / 100}`);
  return { score: r.score, action: r.action, business };
}

await main();
