// Types for the parts of the `tlsh` package (a CommonJS port of Trend Micro's TLSH without its own types) used here.
declare module 'tlsh' {
  /** The 70-hex-digit digest of a string of octets (code units 0-255); throws when the input is too short or too plain. */
  function hash(data: string): string;
  export default hash;
}

declare module 'tlsh/lib/digests/digest-hash-builder.js' {
  interface Digest {
    /** TLSH distance: 0 for near-identical inputs, 200 and more for unrelated ones. */
    calculateDifference(other: Digest, lengthDiff: boolean): number;
  }
  class DigestHashBuilder {
    withHash(hex: string): DigestHashBuilder;
    build(): Digest;
  }
  export default DigestHashBuilder;
  export type { Digest };
}

declare module 'tlsh/lib/buckets/pearson-hash.js' {
  /** Pearson hash of a few octets with TLSH's permutation table. */
  function calculatePearsonHash(data: number[]): number;
  export default calculatePearsonHash;
}

declare module 'tlsh/lib/buckets/quartiles.js' {
  class Quartiles {
    constructor(buckets: number[]);
  }
  export default Quartiles;
}

declare module 'tlsh/lib/buckets/processed-buckets.js' {
  import type Quartiles from 'tlsh/lib/buckets/quartiles.js';
  /** The 256 bucket counts of a text with its checksum and length, turned into a digest. */
  class ProcessedBuckets {
    constructor(checksum: number[] | null, buckets: number[], length: number, quartiles: Quartiles);
    isProcessedDataTooSimple(): boolean;
    buildDigest(): { toString(): string };
  }
  export default ProcessedBuckets;
}
