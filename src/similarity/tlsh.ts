// TLSH (Trend Micro's locality-sensitive hash) of a normalised text, and the distance of two digests: the
// confirmation of a MinHash match that is not clear-cut. The `tlsh` package parses and compares digests and builds
// them from bucket counts; the counting pass over the octets is written here (bucketsOf).
import pearson from 'tlsh/lib/buckets/pearson-hash.js';
import Quartiles from 'tlsh/lib/buckets/quartiles.js';
import ProcessedBuckets from 'tlsh/lib/buckets/processed-buckets.js';
import DigestHashBuilder, { type Digest } from 'tlsh/lib/digests/digest-hash-builder.js';

/** The package refuses inputs shorter than this many octets. */
export const TLSH_MIN_BYTES = 512;
/**
 * Octets hashed at most. The digest only confirms a MinHash match that is not clear-cut, and a campaign's copies
 * show it in their first pages; hashing more costs the gateway time on every message for little.
 */
const TLSH_MAX_BYTES = 4 * 1024;

const HEX70 = /^[0-9A-F]{70}$/;

/** The digest of a text (UTF-8 octets), or undefined when it is too short or too uniform to have one. */
export function tlshOf(text: string): string | undefined {
  const octets = Buffer.from(text, 'utf8');
  if (octets.length < TLSH_MIN_BYTES) return undefined;
  const data = octets.subarray(0, TLSH_MAX_BYTES);
  const { buckets, checksum } = bucketsOf(data);
  // The package's own code turns the buckets into the digest, so the digests are the package's, octet for octet.
  const processed = new ProcessedBuckets(checksum, buckets, data.length, new Quartiles(buckets));
  // Too plain (a repeated line): no meaningful digest.
  if (processed.isProcessedDataTooSimple()) return undefined;
  return processed.buildDigest().toString();
}

/** TLSH's Pearson permutation, read from the package one entry at a time (H([x]) is the table's entry x). */
const PEARSON = Uint8Array.from({ length: 256 }, (_, i) => pearson([i]));

/**
 * TLSH's first pass, written here because the package makes an object and an array per octet and hashes about
 * 10 MB/s, a tenth of a millisecond per KiB of every message's text at the gateway: over a window of five octets,
 * each new octet with two of the four before it, in six salted triplets, counted in 256 buckets, and a one-octet
 * checksum. The same counts as the package's (a test compares the digests).
 */
function bucketsOf(data: Uint8Array): { buckets: number[]; checksum: number[] | null } {
  const counts = new Uint32Array(256);
  const t = PEARSON;
  // Each triplet's first step is the table's entry for its salt: T[0 ^ salt].
  const s2 = t[2];
  const s3 = t[3];
  const s5 = t[5];
  const s7 = t[7];
  const s11 = t[11];
  const s13 = t[13];
  let checksum = -1;
  let b1 = 0;
  let b2 = 0;
  let b3 = 0;
  let b4 = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i];
    if (i >= 4) {
      // c is the newest octet, b1 the one before it … b4 four before.
      checksum = t[t[t[t[0] ^ c] ^ b1] ^ (checksum < 0 ? 0 : checksum)];
      counts[t[t[t[s2 ^ c] ^ b1] ^ b2]]++;
      counts[t[t[t[s3 ^ c] ^ b1] ^ b3]]++;
      counts[t[t[t[s5 ^ c] ^ b2] ^ b3]]++;
      counts[t[t[t[s7 ^ c] ^ b2] ^ b4]]++;
      counts[t[t[t[s11 ^ c] ^ b1] ^ b4]]++;
      counts[t[t[t[s13 ^ c] ^ b3] ^ b4]]++;
    }
    b4 = b3;
    b3 = b2;
    b2 = b1;
    b1 = c;
  }
  return { buckets: Array.from(counts), checksum: checksum < 0 ? null : [checksum] };
}

/** Parses a digest once, for repeated comparisons; undefined for anything but 70 upper-case hex digits. */
export function tlshDigest(hex: string): Digest | undefined {
  return HEX70.test(hex) ? new DigestHashBuilder().withHash(hex).build() : undefined;
}

/**
 * The TLSH distance, without the length term: a campaign's copies differ in length by their personal parts, and
 * the length is already in the MinHash.
 */
export function tlshDistance(a: Digest, b: Digest): number {
  return a.calculateDifference(b, false);
}
