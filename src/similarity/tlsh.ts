// TLSH (Trend Micro's locality-sensitive hash) of a normalised text, through the `tlsh` package, and the distance of
// two digests: the confirmation of a MinHash match that is not clear-cut.
import tlshHash from 'tlsh';
import DigestHashBuilder, { type Digest } from 'tlsh/lib/digests/digest-hash-builder.js';

/** The package refuses inputs shorter than this many octets. */
export const TLSH_MIN_BYTES = 512;
/**
 * Octets hashed at most. The digest only confirms a MinHash match that is not clear-cut, and a campaign's copies
 * show it in their first pages; the package hashes about 10 MB/s, so each KiB is 0.1 ms of the gateway's time.
 */
const TLSH_MAX_BYTES = 4 * 1024;

const HEX70 = /^[0-9A-F]{70}$/;

/** The digest of a text (UTF-8 octets), or undefined when it is too short or too uniform to have one. */
export function tlshOf(text: string): string | undefined {
  const octets = Buffer.from(text, 'utf8');
  if (octets.length < TLSH_MIN_BYTES) return undefined;
  try {
    // The package reads code units as octets: the latin1 form of the UTF-8 bytes is exactly those octets.
    return tlshHash(octets.subarray(0, TLSH_MAX_BYTES).toString('latin1'));
  } catch {
    // InsufficientComplexityError: a text of few distinct octets (a repeated line) has no meaningful digest.
    return undefined;
  }
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
