// MinHash sketches of word 3-shingles: two texts' sketches agree in about the share of positions that equals the
// Jaccard similarity of their shingle sets. Written here because the npm MinHash packages hash with floating-point
// arithmetic or allocate per shingle; this one is a few integer mixes per shingle and position.

/** Positions (hash functions) of a sketch; the index bands them 16 × 4. */
export const PERMUTATIONS = 64;
/** Words per shingle. */
export const SHINGLE = 3;

/** 32-bit FNV-1a of a string's UTF-16 code units. */
export function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finaliser: spreads every input bit over the output. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

// One fixed seed per position, from a fixed generator, so sketches made by any node and any run compare.
const SEEDS = new Uint32Array(PERMUTATIONS);
for (let i = 0, s = 0x9e3779b9; i < PERMUTATIONS; i++) SEEDS[i] = s = mix32(s + 0x6d2b79f5 + i);

/** The distinct 32-bit hashes of a token list's shingles (a shorter list gives one shingle of all its tokens). */
export function shingleHashes(tokens: readonly string[]): Uint32Array {
  const set = new Set<number>();
  if (tokens.length > 0 && tokens.length < SHINGLE) set.add(fnv1a(tokens.join(' ')));
  for (let i = 0; i + SHINGLE <= tokens.length; i++) set.add(fnv1a(`${tokens[i]} ${tokens[i + 1]} ${tokens[i + 2]}`));
  return Uint32Array.from(set);
}

/** The sketch: per position, the least of the shingle hashes mixed with that position's seed. */
export function minhash(shingles: Uint32Array): Uint32Array {
  const out = new Uint32Array(PERMUTATIONS).fill(0xffffffff);
  for (let j = 0; j < shingles.length; j++) {
    const x = shingles[j];
    for (let i = 0; i < PERMUTATIONS; i++) {
      const h = mix32(x ^ SEEDS[i]);
      if (h < out[i]) out[i] = h;
    }
  }
  return out;
}

/** Estimated Jaccard similarity: the share of positions where two sketches agree. */
export function jaccard(a: ArrayLike<number>, aOff: number, b: ArrayLike<number>, bOff: number): number {
  let same = 0;
  for (let i = 0; i < PERMUTATIONS; i++) if (a[aOff + i] === b[bOff + i]) same++;
  return same / PERMUTATIONS;
}
