// The decoded-chunk join must give the bytes postal-mime's own Blob round trip gives, for every chunk and message.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import PostalMime, { type Email } from 'postal-mime';
import { describe, expect, it } from 'vitest';
import { joinChunks } from './mime-join.ts';
import { buildMessageView } from './message-view.ts';

// The CommonJS build is a module instance of its own, which the join is not installed on: the reference.
const ReferenceMime = (createRequire(import.meta.url)('postal-mime') as { default: typeof PostalMime }).default;

type Part = string | ArrayBuffer | Uint8Array | DataView;

const blobBytes = async (chunks: Part[]): Promise<string> => Buffer.from(await new Blob(chunks).arrayBuffer()).toString('hex');

const chunk: fc.Arbitrary<Part> = fc.oneof(
  fc.constant('\n'),
  fc.string({ unit: 'binary', maxLength: 20 }),
  // Lone surrogates: the Blob constructor writes U+FFFD for each.
  fc.constantFrom('\ud800', 'a\udc00b', '\ud83d\ude00'),
  fc.uint8Array({ maxLength: 40 }).map((a) => a.buffer as ArrayBuffer),
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 40 }), fc.nat(3)).map(([a, skip]) => a.subarray(skip, a.length - 1)),
  fc.uint8Array({ minLength: 2, maxLength: 20 }).map((a) => new DataView(a.buffer, 1)),
);

describe('joinChunks', () => {
  it('gives the bytes of new Blob(chunks).arrayBuffer() for strings, buffers and views', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(chunk, { maxLength: 30 }), async (chunks) => {
        const joined = joinChunks(chunks);
        expect(joined).toBeInstanceOf(ArrayBuffer);
        expect(Buffer.from(joined as ArrayBuffer).toString('hex')).toBe(await blobBytes(chunks));
      }),
    );
  });

  it('declines a chunk of another kind, so that the Blob path still handles it', () => {
    expect(joinChunks([new Uint8Array([1]), new Blob(['x'])])).toBeUndefined();
    expect(joinChunks([42])).toBeUndefined();
  });
});

/** What a parse shows the checks, with attachment bytes as digests. */
function summary(e: Email): unknown {
  const digest = (c: unknown) => createHash('sha256').update(typeof c === 'string' ? Buffer.from(c) : new Uint8Array(c as ArrayBuffer)).digest('hex');
  return {
    text: e.text,
    html: e.html,
    attachments: e.attachments.map((a) => ({ filename: a.filename, mimeType: a.mimeType, bytes: digest(a.content) })),
  };
}

describe('the shared parse with the join installed', () => {
  // Every fixture message of the checks: base64, quoted-printable and 8-bit parts, archives, nested messages.
  const dir = path.join(import.meta.dirname, 'checks');
  const files = fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.eml') && !f.startsWith('content'))
    .map((f) => path.join(dir, f));

  it('is installed on the parser the view uses, for each transfer encoding', () => {
    for (const cte of ['7bit', 'base64', 'quoted-printable']) {
      const root = (new PostalMime() as unknown as { root: { setupContentDecoder(c: string): void; contentDecoder: object } }).root;
      root.setupContentDecoder(cte);
      expect(Object.hasOwn(root.contentDecoder, 'finalize'), cte).toBe(true);
    }
  });

  it('finds fixture messages to compare', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it('gives each fixture message the text, HTML and attachment bytes the unchanged parser gives', async () => {
    let compared = 0;
    for (const file of files) {
      const raw = fs.readFileSync(file);
      const { email } = await (await buildMessageView(raw)).parse();
      if (!email) continue;
      const opts = { attachmentEncoding: 'arraybuffer' as const, maxNestingDepth: 32, maxHeadersSize: 1024 * 1024, maxRfc822NestingDepth: 32 };
      expect(summary(email), file).toEqual(summary(await ReferenceMime.parse(raw, opts)));
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
  });
});
