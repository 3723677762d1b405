// The digest as rendered: hostile subjects and senders escaped, the count line past max_entries, times in the
// configured zone, reasons in words.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load.ts';
import type { QuarantineEntry } from './service.ts';
import { cleanLine, reasonInWords, renderDigest, type DigestLinks } from './digest-render.ts';

const NOW = Date.UTC(2026, 10, 30, 7, 0, 0);

function entry(n: number, over: Partial<QuarantineEntry> = {}): QuarantineEntry {
  return {
    id: `Q${n}.bob@example.com`,
    msg_id: `Q${n}`,
    rcpt: 'bob@example.com',
    sender: `sender${n}@spam.example`,
    subject: `offer ${n}`,
    reason: 'score 9.40',
    score: 9.4,
    symbols: [
      { name: 'BAYES_SPAM_99', score: 7 },
      { name: 'URL_SHORTENER', score: 1.5 },
    ],
    policies: [],
    size: 1234,
    created_at: NOW - n * 60_000,
    expires_at: NOW - n * 60_000 + 30 * 86_400_000,
    status: 'held',
    acted_at: null,
    acted_by: null,
    ...over,
  };
}

function links(entries: QuarantineEntry[]): DigestLinks {
  return {
    quarantine: 'https://gw.example.com/q/VIEW.all',
    entries: Object.fromEntries(entries.map((e) => [e.id, { release: `https://gw.example.com/q/R.${e.msg_id}`, delete: `https://gw.example.com/q/D.${e.msg_id}`, allow: `https://gw.example.com/q/A.${e.msg_id}`, view: `https://gw.example.com/q/V.${e.msg_id}` }])),
  };
}

const config = (extra = '') => parseConfigText(`data_dir = "/tmp/unused"\n${extra}`, 'test.toml');

describe('renderDigest', () => {
  it('escapes attacker-chosen subjects and senders in the HTML and keeps the text part on one line each', () => {
    const hostile = [
      entry(1, { subject: '<script>alert(1)</script> invoice' }),
      entry(2, { subject: '"><img src=x onerror=alert(2)>', sender: 'x"><b>@evil.example' }),
      entry(3, { subject: 'line one\r\nFrom: ceo@example.com\u202egnp.exe' }),
    ];
    const d = renderDigest({ rcpt: 'bob@example.com', entries: hostile, links: links(hostile), config: config(), now: NOW });
    expect(d.html).not.toMatch(/<script|<img|onerror=alert\(2\)>|<b>/i);
    expect(d.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; invoice');
    expect(d.html).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(d.html).toContain('x&quot;&gt;&lt;b&gt;@evil.example');
    // No remote content and no script of any kind: only our own links.
    expect(d.html).not.toMatch(/<(script|style|iframe|object|link|img)\b/i);
    expect([...d.html.matchAll(/href="([^"]*)"/g)].every((m) => m[1].startsWith('https://gw.example.com/q/'))).toBe(true);
    // The text part: the injected line break is gone, and so is the right-to-left override.
    expect(d.text).toContain('3. line one From: ceo@example.comgnp.exe');
    expect(d.text).not.toMatch(/^From: ceo/m);
    expect(d.text).not.toContain('\u202e');
    expect(d.text).toContain('<script>alert(1)</script> invoice');
    expect(d.subject).toBe('Quarantine: 3 messages held for you');
  });

  it('lists newest first, at most max_entries, and says how many more are on the quarantine page', () => {
    const many = [5, 1, 4, 2, 3].map((n) => entry(n));
    const d = renderDigest({ rcpt: 'bob@example.com', entries: many, total: 7, links: links(many), config: config('[quarantine.digest]\nmax_entries = 3\n'), now: NOW });
    const order = [...d.text.matchAll(/^\d+\. offer (\d)$/gm)].map((m) => Number(m[1]));
    expect(order).toEqual([1, 2, 3]);
    expect(d.text).toContain('4 more messages are on your quarantine page.');
    expect(d.html).toContain('4 more messages are on your quarantine page.');
    expect(d.html).not.toContain('offer 4');
    expect(d.subject).toBe('Quarantine: 7 messages held for you');
    const one = renderDigest({ rcpt: 'bob@example.com', entries: [entry(1)], links: links([entry(1)]), config: config(), now: NOW });
    expect(one.text).not.toMatch(/more message/);
    expect(one.subject).toBe('Quarantine: 1 message held for you');
  });

  it('shows times in the configured zone and says how long mail is kept and links work', () => {
    const e = [entry(0)];
    const berlin = renderDigest({ rcpt: 'bob@example.com', entries: e, links: links(e), config: config('[quarantine.digest]\ntimezone = "Europe/Berlin"\n'), now: NOW });
    expect(berlin.text).toContain('Received: 30 Nov 2026, 08:00 CET');
    const ny = renderDigest({ rcpt: 'bob@example.com', entries: e, links: links(e), config: config('[quarantine.digest]\ntimezone = "America/New_York"\n'), now: NOW });
    expect(ny.text).toContain('Received: 30 Nov 2026, 02:00 GMT-5');
    expect(ny.text).toContain('kept for 30 days');
    expect(ny.text).toContain('work for 14 days (until 14 Dec 2026, 02:00 GMT-5)');
    expect(ny.html).toContain('https://gw.example.com/q/VIEW.all');
    expect(ny.text).toContain('Release:      https://gw.example.com/q/R.Q0');
  });
});

describe('reasonInWords', () => {
  const c = config();
  it('turns a score into the threshold and the strongest kinds of evidence', () => {
    expect(reasonInWords(entry(1), c)).toBe('scored 9.4 (threshold 8): looks like spam — Bayes, suspicious links');
  });
  it('names a policy, a rule and a mixed-recipient hold in words', () => {
    expect(reasonInWords(entry(1, { reason: 'source blocked for harvesting', symbols: [] }), c)).toBe('held by a policy: source blocked for harvesting');
    expect(reasonInWords(entry(1, { reason: 'rule ceo@localhost / *@example.org → quarantine', symbols: [] }), c)).toBe('held by a rule your administrator set for this sender or address');
    expect(reasonInWords(entry(1, { reason: 'reject for this recipient, held because others accepted the message' }), c)).toBe('refused for you but accepted for other recipients, so held instead');
  });
  it('cleans text it repeats from a policy', () => {
    expect(cleanLine('a\r\nb\u202ec')).toBe('a bc');
  });
});
