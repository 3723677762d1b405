// The bounded parse (message-view.ts) on hostile MIME: caps hold for any bytes, and what is inside is still found.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import PostalMime from 'postal-mime';
import { describe, expect, it } from 'vitest';
import { buildMessageView, PARSE_LIMITS, scanStructure, type ParseLimits } from '../../message-view.ts';
import { EICAR, nestedMessages } from './make-cases.ts';
import type { Check } from '../../check.ts';
import { CHECKS } from '../index.ts';
import { caseInput, loadCases, type LoadedCase } from '../cases.ts';
import { Runner } from '../../runner.ts';
import { actionForScore, ScoreTable, total } from '../../scoring.ts';
import { silentLogger } from '../../../core/log.ts';
import { configSchema } from '../../../config/schema.ts';

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
const SMALL: ParseLimits = { maxDepth: 6, maxParts: 40, maxHeaderBytes: 2_000, maxTotalHeaderBytes: 6_000, maxParams: 8, maxBoundaryBytes: 40, maxDecodedBytes: 20_000 };

/** A random MIME tree as text: multiparts, nested messages, leaves with random encodings, sometimes cut short. */
const tree: fc.Memo<string> = fc.memo((n) =>
  n <= 1
    ? fc
        .record({
          type: fc.constantFrom('text/plain', 'text/html', 'application/pdf', 'image/png', 'text/plain; charset=bogus'),
          cte: fc.constantFrom('', 'base64', 'quoted-printable', '7bit', 'x-weird'),
          body: fc.string({ maxLength: 60 }),
        })
        .map(({ type, cte, body }) => `Content-Type: ${type}\r\n${cte ? `Content-Transfer-Encoding: ${cte}\r\n` : ''}\r\n${body}\r\n`)
    : fc.oneof(
        fc
          .record({ b: fc.stringMatching(/^[A-Za-z0-9'()+_,./:=?-]{1,20}$/), kids: fc.array(tree(n - 1), { minLength: 1, maxLength: 4 }), close: fc.boolean() })
          .map(
            ({ b, kids, close }) =>
              `Content-Type: multipart/mixed; boundary="${b}"\r\n\r\n${kids.map((k) => `--${b}\r\n${k}`).join('')}${close ? `--${b}--\r\n` : ''}`,
          ),
        tree(n - 1).map((inner) => `Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n${inner}`),
        tree(n - 1),
      ),
);

describe('bounded MIME parse', () => {
  it('never throws on arbitrary bytes and stops at every cap', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4_000 }), async (bytes) => {
        const view = await buildMessageView(Buffer.from(bytes), SMALL);
        const r = await view.parse();
        expect(r.structure.parts).toBeLessThanOrEqual(SMALL.maxParts + 1);
        expect(r.structure.depth).toBeLessThanOrEqual(SMALL.maxDepth + 1);
        if (r.email) expect(r.limits).toEqual([]);
        else expect(r.error).toBeTypeOf('string');
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on generated MIME trees; a tree within the caps is parsed, one beyond them is not', async () => {
    await fc.assert(
      fc.asyncProperty(tree(8), fc.nat(400), async (body, cut) => {
        const text = `From: a@partner.example\r\nMIME-Version: 1.0\r\n${body}`;
        const raw = Buffer.from(cut > 300 ? text.slice(0, text.length - cut) : text, 'latin1');
        const r = await (await buildMessageView(raw, SMALL)).parse();
        const s = r.structure;
        expect(s.parts).toBeLessThanOrEqual(SMALL.maxParts + 1);
        expect(s.depth).toBeLessThanOrEqual(SMALL.maxDepth + 1);
        if (r.limits.length === 0) expect(r.email, r.error).toBeDefined();
        if (s.depth > SMALL.maxDepth) expect(r.limits).toContain('depth');
        if (s.parts > SMALL.maxParts) expect(r.limits).toContain('parts');
        if (r.limits.length === 0) expect(s.decodedBytes).toBeLessThanOrEqual(SMALL.maxDecodedBytes);
      }),
      { numRuns: 300 },
    );
  });

  it('M-01: nesting 5,000 deep is refused by the scan before the parser sees it', () => {
    let s = 'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n';
    for (let i = 0; i < 5_000; i++) s += `--b${i}\r\nContent-Type: multipart/mixed; boundary="b${i + 1}"\r\n\r\n`;
    const r = scanStructure(Buffer.from(s, 'latin1'));
    expect(r.limits).toEqual(['depth']);
    expect(r.structure.depth).toBe(PARSE_LIMITS.maxDepth + 1);
  });

  it('M-02: EICAR twelve messages deep is among the attachments, where postal-mime alone would hide it', async () => {
    const raw = crlf(nestedMessages(12));
    const r = await (await buildMessageView(raw)).parse();
    expect(r.limits).toEqual([]);
    const found = r.email?.attachments.find((a) => Buffer.from(a.content as ArrayBuffer).equals(EICAR));
    expect(found?.filename).toBe('eicar.com');
    const plain = await PostalMime.parse(raw);
    expect(plain.attachments.some((a) => Buffer.from(a.content as ArrayBuffer).equals(EICAR))).toBe(false);
    expect(plain.attachments.some((a) => a.rfc822DepthExceeded)).toBe(true);
  });

  it('M-03: 200,000 parts stop at the part cap', async () => {
    const s = `From: a@b.example\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n${'--p\r\n\r\nx\r\n'.repeat(200_000)}--p--\r\n`;
    const r = await (await buildMessageView(Buffer.from(s, 'latin1'))).parse();
    expect(r.limits).toEqual(['parts']);
    expect(r.email).toBeUndefined();
    expect(r.structure.parts).toBe(PARSE_LIMITS.maxParts + 1);
  });

  it('H-05, H-07: 500,000 folded Subject lines and 100,000 To lines stop at the header cap; the view keeps the start', async () => {
    for (const s of [`Subject: x${'\r\n y'.repeat(500_000)}\r\n\r\nbody\r\n`, `${'To: <a@b.example>\r\n'.repeat(100_000)}\r\nbody\r\n`]) {
      const view = await buildMessageView(Buffer.from(s, 'latin1'));
      expect(view.headersTruncated).toBe(true);
      expect(view.headerBytes).toBe(s.indexOf('\r\n\r\n') + 4);
      const r = await view.parse();
      expect(r.limits).toEqual(['header-size']);
    }
  });

  it('H-03, H-09, E-01, E-03, E-04: odd headers parse without throwing', async () => {
    const samples = [
      `From sender Tue Mar 11 10:00:00 2025\r\n>>>From ${'x'.repeat(100_000)}\r\nSubject: t\r\n\r\nbody\r\n`,
      'List-__proto__: <mailto:a@x>\r\nconstructor: y\r\nFrom: a@b.example\r\n\r\nbody\r\n',
      'Subject: =?x-unknown?B?!!!?= =?UTF-8?Q?=ZZ?= =?UTF-8?B?====?=\r\n\r\nbody\r\n',
      `From: =?utf-8?B?${Buffer.from(`<a${'@'.repeat(200_000)}`).toString('base64')}?= <a@b.example>\r\n\r\nbody\r\n`,
      `Subject: ${'=?UTF-8?B?YQ==?= '.repeat(100_000)}\r\n\r\nbody\r\n`,
    ];
    for (const s of samples) {
      const view = await buildMessageView(Buffer.from(s, 'latin1'));
      const r = await view.parse();
      expect(r.error === undefined || r.limits.length > 0).toBe(true);
    }
    const view = await buildMessageView(Buffer.from(samples[1], 'latin1'));
    expect(view.header('list-__proto__')).toBe('<mailto:a@x>');
    expect(view.header('constructor')).toBe('y');
    expect(view.header('toString')).toBeUndefined();
  });

  it('scans every fixture of cases/ the same way twice (no state between messages)', async () => {
    const dir = path.join(import.meta.dirname, 'cases');
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.eml'))) {
      const raw = crlf(fs.readFileSync(path.join(dir, f), 'latin1'));
      expect(scanStructure(raw), f).toEqual(scanStructure(raw));
    }
  });
});

describe('held, never passed as clean', () => {
  // Every fixture the parse could not open, and every From the parsers disagree on, is held by the default
  // thresholds on the strength of these checks alone.
  const held: [string, string][] = [
    ['mime', 'nested-multipart-300.eml'],
    ['mime', 'rfc822-40-deep.eml'],
    ['mime', 'parts-1500.eml'],
    ['mime', 'param-flood-10000.eml'],
    ['mime', 'header-block-300k.eml'],
    ['mime', 'base64-rfc822-nested.eml'],
    ['headers', 'a08-two-from-fields.eml'],
    ['headers', 'a09-leading-space-from.eml'],
    ['headers', 'a11-folded-field-name.eml'],
    ['headers', 'a15-encoded-word-address.eml'],
    ['headers', 'a17-escaped-comma.eml'],
    ['headers', 'a19-address-after-angle.eml'],
  ];
  it.each(held)('%s %s reaches at least quarantine', async (name, file) => {
    const check = CHECKS.find((c) => c.name === name) as Check;
    const c = loadCases(check).find((k) => k.file === file && !k.parse_limits) as LoadedCase;
    const { input, now } = await caseInput(c);
    const scores = new ScoreTable(CHECKS, {});
    const runner = new Runner({ checks: [check], options: new Map([[check.name, check.options?.parse({}) ?? {}]]), scores, timeoutMs: 2_000, log: silentLogger, now: () => now });
    const res = await runner.run('data', input);
    const actions = configSchema.parse({}).analysis.actions;
    expect(['quarantine', 'reject'], res.hits.map((h) => h.name).join(' ')).toContain(actionForScore(total(res.hits, scores), actions));
  });
});

describe('the scan counts parts as postal-mime makes them', () => {
  it('headerless parts, each a delimiter line straight after the last, count one by one', async () => {
    const s = `From: a@b.example\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n${'--p\r\n'.repeat(5_000)}--p--\r\n`;
    const r = await (await buildMessageView(Buffer.from(s, 'latin1'))).parse();
    expect(r.limits).toEqual(['parts']);
  });
});

/** Trees of multiparts and leaves only, so that every entity is a node of postal-mime's top-level parser. */
const flatTree: fc.Memo<string> = fc.memo((n) =>
  n <= 1
    ? fc.constantFrom('Content-Type: text/plain\r\n\r\nx\r\n', 'Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n', '', 'X-Only: header\r\n')
    : fc.oneof(
        fc
          .record({ b: fc.constantFrom('a', 'b', 'c', 'a-', 'a--', 'a \t'), kids: fc.array(flatTree(n - 1), { minLength: 0, maxLength: 4 }), close: fc.boolean(), blank: fc.boolean() })
          .map(({ b, kids, close, blank }) => `Content-Type: multipart/mixed; boundary="${b}"\r\n${blank ? '\r\n' : ''}${kids.map((k, i) => `--${b}${i % 2 ? ' ' : ''}\r\n${k}`).join('')}${close ? `--${b}--\r\n` : ''}`),
        flatTree(n - 1),
      ),
);

it('counts the same entities as postal-mime builds, for any tree of multiparts (reused and prefix boundaries included)', async () => {
  interface Node { childNodes: Node[] }
  const count = (n: Node): number => 1 + n.childNodes.reduce((a, c) => a + count(c), 0);
  await fc.assert(
    fc.asyncProperty(flatTree(6), async (body) => {
      const raw = Buffer.from(`From: a@b.example\r\n${body}`, 'latin1');
      const parser = new PostalMime() as unknown as { parse(b: Buffer): Promise<unknown>; root: Node };
      await parser.parse(raw);
      expect(scanStructure(raw).structure.parts).toBe(count(parser.root));
    }),
    { numRuns: Number(process.env.MIME_RUNS ?? 500) },
  );
});

it('M-08: a 4 MB body line without a line end parses, its size counted', async () => {
  const s = `From: a@b.example\r\nContent-Type: text/plain\r\n\r\n${'x'.repeat(4 * 1024 * 1024)}`;
  const r = await (await buildMessageView(Buffer.from(s, 'latin1'))).parse();
  expect(r.limits).toEqual([]);
  expect(r.structure.decodedBytes).toBe(4 * 1024 * 1024);
  expect(r.email?.text?.startsWith('xxxx')).toBe(true);
  expect(r.email?.text?.length).toBeGreaterThanOrEqual(4 * 1024 * 1024);
});
