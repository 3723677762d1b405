// npm run bench:similarity — the similarity index's insert and query rates at 100k and 1M entries, and its memory.
//
//   npm run bench:similarity -- [--sizes 100000,1000000] [--bases 1500] [--queries 20000]
//
// The entries are synthetic but start from real texts: the fingerprints of `bases` messages of the development
// corpus (SpamAssassin's easy-ham-1, hard-ham-1 and spam-1), each entry a copy of one with part of its MinHash
// sketch replaced (as a variant's changed shingles would) and, for half of them, its attachment hashes changed.
// Half the entries are made wholly unlike any other (every sketch position fresh), as most real mail is.
// Run with --expose-gc (the npm script does) so the memory figure is the index's, after a full collection.
import { parseArgs } from 'node:util';
import { buildMessageView } from '../src/analysis/message-view.ts';
import { configSchema } from '../src/config/schema.ts';
import { fingerprintOf, type Fingerprint } from '../src/similarity/fingerprint.ts';
import { indexOptionsOf, SimilarityIndex } from '../src/similarity/index.ts';
import { rng } from '../src/similarity/fixtures.ts';
import { corpus, readCorpusItem } from '../scripts/corpus.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000,1000000' },
    bases: { type: 'string', default: '1500' },
    queries: { type: 'string', default: '20000' },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const QUERIES = Number(values.queries);
const gc = (globalThis as { gc?: () => void }).gc;

async function bases(n: number): Promise<Fingerprint[]> {
  const items = corpus();
  const step = Math.max(1, Math.floor(items.length / n));
  const out: Fingerprint[] = [];
  for (let i = 0; i < items.length && out.length < n; i += step) {
    const fp = await fingerprintOf(await buildMessageView(readCorpusItem(items[i])));
    if (fp.minhash.length) out.push(fp);
  }
  return out;
}

const hex = (r: () => number) => Array.from({ length: 8 }, () => Math.floor(r() * 0x100000000).toString(16).padStart(8, '0')).join('');

/** Entry i: a variant of a base (even i) or a message like no other (odd i). */
function synthetic(base: readonly Fingerprint[], i: number, r: () => number): Fingerprint {
  const b = base[Math.floor(r() * base.length)];
  const unique = i % 2 === 1;
  const share = unique ? 1 : r() * 0.4;
  const minhash = b.minhash.map((v) => (r() < share ? Math.floor(r() * 0x100000000) : v));
  const files = (xs: string[]) => (unique || r() < 0.5 ? xs.map(() => hex(r)) : xs);
  return { ...b, minhash, attachments: files(b.attachments), members: files(b.members), ...(unique && { tlsh: undefined }) };
}

function percentile(xs: Float64Array, p: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

const base = await bases(Number(values.bases));
console.log(`${base.length} base fingerprints from the development corpus; node ${process.version}`);
const options = indexOptionsOf(configSchema.parse({}).similarity);
for (const size of SIZES) {
  gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const r = rng(size);
  const index = new SimilarityIndex(options);
  const t0 = Date.UTC(2025, 10, 20);
  // Spread over 47 hours of the 48-hour window: nothing is evicted while filling.
  const dt = (47 * 3_600_000) / size;
  // Fingerprints are made in batches outside the timed part, so only the index is measured.
  const BATCH = 50_000;
  let insertMs = 0;
  let matched = 0;
  for (let start = 0; start < size; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, size - start) }, (_, k) => synthetic(base, start + k, r));
    const s = performance.now();
    for (let k = 0; k < batch.length; k++) {
      const i = start + k;
      const res = index.insert(`m${i}`, batch[k], t0 + i * dt, { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, senderDomain: 'example.net', recipients: 1, suspicious: false });
      if (!res.created) matched++;
    }
    insertMs += performance.now() - s;
  }
  gc?.();
  const heap = process.memoryUsage().heapUsed - heap0;
  const rss = process.memoryUsage().rss;
  const qs = Array.from({ length: QUERIES }, (_, k) => synthetic(base, k * 2, r));
  const lat = new Float64Array(QUERIES);
  let hits = 0;
  const qStart = performance.now();
  for (let k = 0; k < QUERIES; k++) {
    const s = performance.now();
    hits += index.query(qs[k]).length ? 1 : 0;
    lat[k] = performance.now() - s;
  }
  const queryMs = performance.now() - qStart;
  console.log(
    `${size.toLocaleString('en')} entries: insert ${Math.round(size / (insertMs / 1000)).toLocaleString('en')}/s ` +
      `(${matched.toLocaleString('en')} joined a cluster, ${index.listClusters().length.toLocaleString('en')} clusters); ` +
      `query ${Math.round(QUERIES / (queryMs / 1000)).toLocaleString('en')}/s, p50 ${(percentile(lat, 0.5) * 1000).toFixed(1)} µs, ` +
      `p99 ${(percentile(lat, 0.99) * 1000).toFixed(1)} µs (${((hits / QUERIES) * 100).toFixed(1)}% of variant queries matched); ` +
      `heap ${(heap / 2 ** 20).toFixed(0)} MiB (${Math.round(heap / size)} B/entry), rss ${(rss / 2 ** 20).toFixed(0)} MiB`,
  );
}
