// What a fingerprint is, apart from how one is made (fingerprint.ts): the trend analyzer and the gateways' mirrors
// read stored fingerprints with this alone, without loading the parsers and archive readers that making one needs.
export const FINGERPRINT_VERSION = 1;

/** What a message looks like to the similarity index. Plain data: it goes to JSON and back unchanged. */
export interface Fingerprint {
  v: typeof FINGERPRINT_VERSION;
  /** TLSH of the normalised text (70 hex digits); absent for texts under 512 octets or too uniform. */
  tlsh?: string;
  /** MinHash of the normalised text's word 3-shingles (64 unsigned 32-bit values); empty when there is no text. */
  minhash: number[];
  /** Distinct shingles behind the sketch: a sketch of very few says little and is not banded. */
  shingles: number;
  /** SHA-256 (hex) of each attachment that is a file of its own (not an image the HTML shows inline). */
  attachments: string[];
  /** SHA-256 (hex) of each archive member read in full. */
  members: string[];
  structure: Structure;
}

export interface Structure {
  /** Top content type, and which of text, HTML and attachments the message has: "multipart/mixed|th2". */
  layout: string;
  /** Content types of the attachments, sorted. */
  types: string[];
  /** Attachment names with digits and random runs normalised, sorted: "invoice_#.pdf". */
  names: string[];
  /** Registrable domains of the URLs, sorted, at most MAX_DOMAINS. */
  domains: string[];
  /** Short hash of layout, types and names: copies of one campaign share it even when their links rotate. */
  shape: string;
}
