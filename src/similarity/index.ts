// The in-memory similarity index over a sliding window: which recent messages are like this one, and the cluster
// each message joins. Candidates come from LSH bands of the MinHash and from exact attachment hashes; each is then
// scored on the whole sketch, and TLSH or the structure confirms a match that is not clear-cut.
import type { Digest } from 'tlsh/lib/digests/digest-hash-builder.js';
import type { Config } from '../config/schema.ts';
import { Clusters, type ClusterStats, type EntryFacts } from './clusters.ts';
import type { Fingerprint } from './fingerprint.ts';
import { jaccard, mix32, PERMUTATIONS } from './minhash.ts';
import { tlshDigest, tlshDistance } from './tlsh.ts';

export type { ClusterStats, EntryFacts };

export interface IndexOptions {
  /** How long an entry stays, in ms. */
  windowMs: number;
  /** Estimated Jaccard similarity at or above which two messages match outright. */
  joinJaccard: number;
  /** Jaccard at or above which they match when TLSH or the attachments' structure confirms it. */
  confirmJaccard: number;
  /** TLSH distance at or below which a match is confirmed. */
  tlshMax: number;
  /** Fewest distinct shingles for a text to be banded: a few words in common say nothing. */
  minShingles: number;
  /** Most recent entries kept per band bucket or file hash: a campaign of thousands needs only its latest few. */
  bucketCap: number;
}

/** The index's options from the [similarity] section, where their defaults live. */
export function indexOptionsOf(c: Config['similarity']): IndexOptions {
  return {
    windowMs: c.window_h * 3_600_000,
    joinJaccard: c.join_jaccard,
    confirmJaccard: c.confirm_jaccard,
    tlshMax: c.tlsh_max,
    minShingles: c.min_shingles,
    bucketCap: c.bucket_cap,
  };
}

/** A recent message like the one asked about. */
export interface Match {
  id: string;
  cluster: number;
  /** 0..1: the estimated Jaccard similarity of the texts, at least 0.9 when they share a file. */
  score: number;
  jaccard: number;
  /** TLSH distance, when it was needed to confirm the match. */
  tlsh?: number;
  /** They share an attachment or archive member byte for byte. */
  sharedFile: boolean;
  /** Same MIME layout, attachment types and normalised attachment names. */
  sameShape: boolean;
}

export interface InsertResult {
  /** The cluster the message is now in. */
  cluster: number;
  /** It started a new cluster. */
  created: boolean;
  /** Clusters merged into `cluster` because the message matched members of each. */
  merged: number[];
  matches: Match[];
}

interface Entry {
  id: string;
  ts: number;
  /** Row of the sketch pool, -1 when the text is too short to be banded. */
  slot: number;
  tlsh?: string;
  files: string[];
  shape: string;
  hasTypes: boolean;
  /** Cluster id at insertion; Clusters.find gives the live one. */
  cluster: number;
  facts: EntryFacts;
}

const BANDS = 16;
const ROWS = PERMUTATIONS / BANDS;
/**
 * Sketches live in pooled typed arrays rather than one small array per entry: 256 bytes each, no object header. A
 * chunk is 1 MB, so an index that holds a few entries (a gateway's own recent copies) costs no more than that.
 */
const CHUNK = 1 << 12;
const MAX_MATCHES = 20;
/** Parsed TLSH digests kept for reuse. */
const DIGEST_CACHE = 1024;

type Bucket = Entry | Entry[];

export class SimilarityIndex {
  readonly options: Readonly<IndexOptions>;
  private readonly clusters = new Clusters();
  private readonly byId = new Map<string, Entry>();
  /** Entries in insertion order, for eviction; `head` is the oldest still present. */
  private queue: Entry[] = [];
  private head = 0;
  private readonly bands: Map<number, Bucket>[] = Array.from({ length: BANDS }, () => new Map());
  private readonly files = new Map<string, Bucket>();
  private readonly pool: Uint32Array[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private readonly digests = new Map<string, Digest | undefined>();

  constructor(options: IndexOptions) {
    if (options.confirmJaccard > options.joinJaccard) throw new Error(`similarity: confirm_jaccard (${options.confirmJaccard}) must not exceed join_jaccard (${options.joinJaccard})`);
    this.options = { ...options };
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * Recent messages like this fingerprint, best first (at most 20). With `now`, entries the window has left behind
   * but that no insert has evicted yet are passed over.
   */
  query(fp: Fingerprint, now?: number): Match[] {
    const cutoff = now === undefined ? -Infinity : now - this.options.windowMs;
    const sketch = this.usable(fp) ? Uint32Array.from(fp.minhash) : undefined;
    const cands = new Map<Entry, boolean>();
    if (sketch) {
      for (let b = 0; b < BANDS; b++) this.collect(this.bands[b].get(bandKey(sketch, 0, b)), cands, false);
    }
    for (const h of [...fp.attachments, ...fp.members]) this.collect(this.files.get(h), cands, true);
    const o = this.options;
    const hasTypes = fp.structure.types.length > 0;
    let digest: Digest | undefined | null = null;
    const out: Match[] = [];
    for (const [e, sharedFile] of cands) {
      if (e.ts < cutoff) continue;
      const j = sketch && e.slot >= 0 ? jaccard(sketch, 0, this.chunk(e.slot), (e.slot % CHUNK) * PERMUTATIONS) : 0;
      const sameShape = e.shape === fp.structure.shape;
      let tlsh: number | undefined;
      let ok = sharedFile || j >= o.joinJaccard;
      if (!ok && j >= o.confirmJaccard) {
        if (hasTypes && e.hasTypes && sameShape) ok = true;
        else if (fp.tlsh && e.tlsh) {
          if (digest === null) digest = tlshDigest(fp.tlsh);
          const other = this.digestOf(e.tlsh);
          if (digest && other) {
            tlsh = tlshDistance(digest, other);
            ok = tlsh <= o.tlshMax;
          }
        }
      }
      if (!ok) continue;
      const cluster = this.clusters.find(e.cluster) ?? e.cluster;
      out.push({ id: e.id, cluster, score: sharedFile ? Math.max(j, 0.9) : j, jaccard: j, ...(tlsh !== undefined && { tlsh }), sharedFile, sameShape });
    }
    return out.sort((a, b) => b.score - a.score).slice(0, MAX_MATCHES);
  }

  /**
   * Adds a message and places it in a cluster: the cluster of its matches (merging them when it matches several),
   * or a new one. Evicts what the window has left behind, `ts` being now. An id already present is an error.
   */
  insert(id: string, fp: Fingerprint, ts: number, facts: EntryFacts): InsertResult {
    if (this.byId.has(id)) throw new Error(`similarity index: id "${id}" is already indexed`);
    this.evict(ts);
    const matches = this.query(fp, ts);
    const found = new Set(matches.map((m) => m.cluster));
    let cluster: number;
    let merged: number[] = [];
    if (found.size === 0) cluster = this.clusters.create(ts);
    else if (found.size === 1) cluster = matches[0].cluster;
    else ({ id: cluster, merged } = this.clusters.union(found));
    this.add(id, fp, ts, facts, cluster);
    return { cluster, created: found.size === 0, merged, matches: matches.map((m) => ({ ...m, cluster })) };
  }

  /** Puts back a persisted entry in the cluster it had, without matching (the store already holds the result). */
  restore(id: string, fp: Fingerprint, ts: number, facts: EntryFacts, cluster: number): void {
    if (this.byId.has(id)) return;
    this.clusters.create(ts, cluster);
    this.add(id, fp, ts, facts, this.clusters.find(cluster) ?? cluster);
  }

  /**
   * Puts in an entry that another process (the analyzer) placed in `cluster`: a gateway's mirror of the analyzer's
   * index. Clusters of its matches here are merged into that one, as the analyzer merged them, so the mirror's ids
   * follow the analyzer's without reading its merges.
   */
  adopt(id: string, fp: Fingerprint, ts: number, facts: EntryFacts, cluster: number): void {
    if (this.byId.has(id)) return;
    const found = new Set(this.query(fp).map((m) => m.cluster));
    let c = this.clusters.find(cluster);
    if (c === undefined) c = this.clusters.create(ts, cluster);
    found.add(c);
    if (found.size > 1) c = this.clusters.union(found).id;
    this.add(id, fp, ts, facts, c);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Takes an entry out before the window would (a gateway's own copy, once its mirror has the analyzer's row). */
  remove(id: string): void {
    const e = this.byId.get(id);
    if (e) this.drop(e);
  }

  /** What the index was told of an entry, with its time. */
  entry(id: string): { ts: number; facts: EntryFacts } | undefined {
    const e = this.byId.get(id);
    return e && { ts: e.ts, facts: e.facts };
  }

  /** Members of a cluster that arrived at or after `since` (the outbreak rule's velocity). */
  membersSince(cluster: number, since: number): number {
    return this.clusters.since(cluster, since);
  }

  /** Whether a cluster already has a member from this client address. */
  clusterHasIp(cluster: number, ip: string): boolean {
    return this.clusters.hasIp(cluster, ip);
  }

  /** Drops entries older than the window before `now`; returns how many left. */
  evict(now: number): number {
    const cutoff = now - this.options.windowMs;
    let n = 0;
    while (this.head < this.queue.length && this.queue[this.head].ts < cutoff) {
      const e = this.queue[this.head++];
      this.drop(e);
      n++;
    }
    // Compact once the evicted prefix dominates, so the queue does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return n;
  }

  /** The live cluster of an entry, or undefined when it is not in the window. */
  clusterOf(id: string): number | undefined {
    const e = this.byId.get(id);
    return e && this.clusters.find(e.cluster);
  }

  cluster(id: number): ClusterStats | undefined {
    return this.clusters.stats(id);
  }

  listClusters(): ClusterStats[] {
    return this.clusters.list();
  }

  private usable(fp: Fingerprint): boolean {
    return fp.minhash.length === PERMUTATIONS && fp.shingles >= this.options.minShingles;
  }

  private add(id: string, fp: Fingerprint, ts: number, facts: EntryFacts, cluster: number): void {
    let slot = -1;
    if (this.usable(fp)) {
      slot = this.freeSlots.pop() ?? this.nextSlot++;
      const c = this.chunk(slot);
      c.set(fp.minhash, (slot % CHUNK) * PERMUTATIONS);
    }
    const files = [...new Set([...fp.attachments, ...fp.members])];
    const e: Entry = { id, ts, slot, files, shape: fp.structure.shape, hasTypes: fp.structure.types.length > 0, cluster, facts, ...(fp.tlsh && { tlsh: fp.tlsh }) };
    this.byId.set(id, e);
    this.queue.push(e);
    this.clusters.add(cluster, ts, facts);
    if (slot >= 0) {
      const c = this.chunk(slot);
      for (let b = 0; b < BANDS; b++) push(this.bands[b], bandKey(c, (slot % CHUNK) * PERMUTATIONS, b), e, this.options.bucketCap);
    }
    for (const h of files) push(this.files, h, e, this.options.bucketCap);
  }

  private drop(e: Entry): void {
    if (this.byId.get(e.id) !== e) return;
    this.byId.delete(e.id);
    this.clusters.remove(e.cluster, e.facts, e.ts);
    if (e.slot >= 0) {
      const c = this.chunk(e.slot);
      for (let b = 0; b < BANDS; b++) pull(this.bands[b], bandKey(c, (e.slot % CHUNK) * PERMUTATIONS, b), e);
      this.freeSlots.push(e.slot);
    }
    for (const h of e.files) pull(this.files, h, e);
    if (e.tlsh) this.digests.delete(e.tlsh);
  }

  private chunk(slot: number): Uint32Array {
    const i = Math.floor(slot / CHUNK);
    while (this.pool.length <= i) this.pool.push(new Uint32Array(CHUNK * PERMUTATIONS));
    return this.pool[i];
  }

  /**
   * Parsed TLSH digests of entries compared lately (most never are), at most DIGEST_CACHE: a parsed digest is a few
   * KB, and in a campaign of thousands every copy gets compared.
   */
  private digestOf(hex: string): Digest | undefined {
    let d = this.digests.get(hex);
    if (d !== undefined || this.digests.has(hex)) {
      // Most recently used last: the oldest go first when the cache is full.
      this.digests.delete(hex);
    } else {
      d = tlshDigest(hex);
      if (this.digests.size >= DIGEST_CACHE) this.digests.delete(this.digests.keys().next().value as string);
    }
    this.digests.set(hex, d);
    return d;
  }

  private collect(b: Bucket | undefined, into: Map<Entry, boolean>, shared: boolean): void {
    if (!b) return;
    for (const e of Array.isArray(b) ? b : [b]) if (shared || !into.has(e)) into.set(e, shared || (into.get(e) ?? false));
  }
}

/** One band of a sketch as a 52-bit number: two independent 32-bit mixes of its rows (a Map key without a string). */
function bandKey(s: Uint32Array, off: number, band: number): number {
  let h1 = 0x243f6a88 ^ band;
  let h2 = 0x85a308d3 ^ band;
  for (let r = 0; r < ROWS; r++) {
    const v = s[off + band * ROWS + r];
    h1 = mix32(h1 ^ v);
    h2 = mix32((h2 + v) | 0);
  }
  return h1 * 0x100000 + (h2 >>> 12);
}

/** Adds to a bucket, keeping its `cap` latest entries; a lone entry is stored bare, which most buckets hold. */
function push<K>(m: Map<K, Bucket>, k: K, e: Entry, cap: number): void {
  const b = m.get(k);
  if (!b) m.set(k, e);
  else if (!Array.isArray(b)) m.set(k, [b, e]);
  else {
    b.push(e);
    if (b.length > cap) b.shift();
  }
}

function pull<K>(m: Map<K, Bucket>, k: K, e: Entry): void {
  const b = m.get(k);
  if (!b) return;
  if (!Array.isArray(b)) {
    if (b === e) m.delete(k);
    return;
  }
  const i = b.indexOf(e);
  if (i < 0) return;
  b.splice(i, 1);
  if (b.length === 1) m.set(k, b[0]);
  else if (b.length === 0) m.delete(k);
}
