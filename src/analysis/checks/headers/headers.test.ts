// The author seen by readers (postal-mime) and by DMARC (mailauth), checked against the real libraries: whenever the
// two disagree HDR_FROM_AMBIGUOUS must fire, and the header check never throws on any header block.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import PostalMime from 'postal-mime';
import { describe, expect, it } from 'vitest';
import { buildMessageView } from '../../message-view.ts';
import { wireMessage, OUR_DOMAINS, OUR_HOSTNAME } from '../cases.ts';
import { analyseAuthor } from './from.ts';
import { headers } from './headers.ts';
import { parseHop } from './received.ts';

const require = createRequire(import.meta.url);
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify(input: Buffer, opts: Record<string, unknown>): Promise<{ headerFrom: string[] }>;
};

const session = { ip: '198.51.100.23', helo: 'mail.sender.example', ourHostname: OUR_HOSTNAME, ourDomains: OUR_DOMAINS, trusted: false, tls: false };
const NOW = Date.parse('2025-03-14T10:00:00Z');

async function views(fileBytes: Buffer) {
  const raw = wireMessage(fileBytes, session, NOW);
  const view = await buildMessageView(raw);
  const [email, dmarc] = await Promise.all([PostalMime.parse(raw), dkimVerify(raw, { resolver: async () => [] })]);
  return { view, shown: email.from?.address ?? '', dmarc: dmarc.headerFrom };
}

function runHeaders(view: Awaited<ReturnType<typeof buildMessageView>>): string[] {
  const hits: string[] = [];
  const options = headers.options?.parse({ protected_names: ['Jane Doe'] });
  headers.run({ session, message: view, envelope: { mailFrom: 'a@sender.example', rcptTo: ['alice@example.com'], smtputf8: false, eightBitMime: false } }, {
    options,
    log: undefined as never,
    services: {},
    now: () => NOW,
    signal: new AbortController().signal,
    hit: (s: string) => void hits.push(s),
  } as never);
  return hits;
}

// Pieces of From values that the espoofer rows combine: addresses, separators, quotes, escapes, comments, encoded words.
const piece = fc.constantFrom(
  'admin@legitimate.example', 'first@attack.example', '<admin@legitimate.example>', '<second@attack.example>', '<>', ',', ';', ':',
  ' ', '"', '\\', '(', ')', '"Jane Doe"', 'Jane', '@', '<@attack.example,@any.example:', '=?utf-8?B?PGFkbWluQGxlZ2l0aW1hdGUuZXhhbXBsZT4=?=',
  '=?iso-8859-1?Q?M=FCller=2C_Hans?=', 'undisclosed-recipients:;', '\u00a0', '\t',
);
const fromField = fc.oneof(
  fc.array(piece, { minLength: 1, maxLength: 8 }).map((p) => `From: ${p.join('')}\r\n`),
  fc.constantFrom(
    ' From: <first@attack.example>\r\n', 'From\r\n : <first@attack.example>\r\n', 'From : <first@attack.example>\r\n', 'Sender: <admin@legitimate.example>\r\n',
    // Lines that JavaScript's \s folds (mailauth) but RFC 5322 does not (postal-mime): VT, FF, U+00A0, U+FEFF.
    '\x0bFrom: <first@attack.example>\r\n', '\x0cFrom: <first@attack.example>\r\n', '\u00a0From: <first@attack.example>\r\n', '\ufeffFrom: <first@attack.example>\r\n',
    'FROM:<first@attack.example>\r\n', 'from:\t<first@attack.example>\r\n',
  ),
);

const headerToken = fc.constantFrom(
  'F', 'r', 'o', 'm', ':', ' ', '\t', '\r\n', '<', '>', '@', '"', ',', '(', ')', 'a', '=?', '?=', 'Reply-To', 'Received',
  ';', '[10.0.0.1]', '\u202e', '\uff20', 'Date', 'Fri, 14 Mar 2025 09:59:10 +0100', 'google.com', 'from ', ' by ',
);

describe('author: readers and DMARC', () => {
  it('reads the author as postal-mime and mailauth do, and fires HDR_FROM_AMBIGUOUS whenever they disagree', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fromField, { minLength: 1, maxLength: 3 }), async (fields) => {
        const bytes = Buffer.from(`${fields.join('')}To: <victim@example.com>\r\nSubject: t\r\n\r\nbody\r\n`, 'utf8');
        const { view, shown, dmarc } = await views(bytes);
        const author = analyseAuthor(view);
        expect(author.shown).toBe(shown);
        expect(author.dmarc).toEqual(dmarc);
        const disagree = dmarc.length > 1 || (dmarc.length === 1 ? dmarc[0].toLowerCase() !== shown.toLowerCase() : shown !== '');
        if (disagree) expect(runHeaders(view)).toContain('HDR_FROM_AMBIGUOUS');
      }),
      { numRuns: Number(process.env.FROM_RUNS ?? 400) },
    );
  });

  it('agrees with both libraries on every From fixture of cases/', async () => {
    const dir = path.join(import.meta.dirname, 'cases');
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.eml'))) {
      const { view, shown, dmarc } = await views(fs.readFileSync(path.join(dir, f)));
      const author = analyseAuthor(view);
      expect(author.shown, f).toBe(shown);
      expect(author.dmarc, f).toEqual(dmarc);
    }
  });

  it('never throws on arbitrary header blocks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(headerToken, { maxLength: 120 }), async (tokens) => {
        const block = tokens.join('');
        const view = await buildMessageView(Buffer.from(`${block}\r\n\r\nbody\r\n`, 'utf8'));
        expect(() => runHeaders(view)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });
});

describe('hostile header values', () => {
  it('E-03 and long runs without an @: the From analysis stays linear (a quadratic scan would exceed the test timeout)', async () => {
    const run = 'a'.repeat(200_000);
    for (const from of [`${run} <x@evil.example>`, `"${run}" <x@evil.example> ${run}`, `=?utf-8?B?${Buffer.from(`<a${'@'.repeat(200_000)}`).toString('base64')}?= <a@b.example>`, `${' '.repeat(200_000)}x <a@b.example>`]) {
      const view = await buildMessageView(Buffer.from(`From: ${from}\r\nSubject: t\r\n\r\nbody\r\n`, 'latin1'));
      expect(() => runHeaders(view)).not.toThrow();
    }
  });
});

describe('Received', () => {
  it('reads the parts of a hop', () => {
    const h = parseHop('from mail-sor-f41.google.com (mail-sor-f41.google.com [10.0.0.5]) by mx.bulk-sender.example (Postfix) with ESMTPS id 4Z1 for <alice@example.com>; Fri, 14 Mar 2025 09:59:10 +0100 (CET)');
    expect(h).toEqual({ fromHost: 'mail-sor-f41.google.com', fromIp: '10.0.0.5', byHost: 'mx.bulk-sender.example', time: Date.parse('2025-03-14T08:59:10Z') });
    expect(parseHop('by 2002:a05:6a10:1234 with SMTP id x; garbage').time).toBeNaN();
  });
});
