// Joins a MIME part's decoded chunks into one ArrayBuffer without a Blob: postal-mime 4 gathers each part's bytes into
// a Blob and reads them back with Blob.arrayBuffer(), which on Node 20 goes through a stream of microtasks and, for a
// plain-text body, a Blob piece per line; that was more than half of the parse's CPU on the development corpus.
import PostalMime from 'postal-mime';

type Chunk = string | ArrayBuffer | ArrayBufferView;

const encoder = new TextEncoder();

/**
 * The bytes `new Blob(chunks).arrayBuffer()` would give: strings as UTF-8 (a lone surrogate becomes U+FFFD in both the
 * count and the copy, as in the Blob constructor), buffers and views byte for byte. Undefined for any other kind of chunk.
 */
export function joinChunks(chunks: readonly unknown[]): ArrayBuffer | undefined {
  let total = 0;
  const parts: (Uint8Array | string)[] = new Array(chunks.length);
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i] as Chunk;
    if (typeof c === 'string') {
      // The pass-through decoder adds a '\n' string after every line: count it without encoding it.
      parts[i] = c;
      total += c === '\n' ? 1 : Buffer.byteLength(c, 'utf8');
    } else if (c instanceof ArrayBuffer) {
      parts[i] = new Uint8Array(c);
      total += c.byteLength;
    } else if (ArrayBuffer.isView(c)) {
      parts[i] = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
      total += c.byteLength;
    } else return undefined;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    if (typeof p !== 'string') {
      out.set(p, at);
      at += p.length;
    } else if (p === '\n') out[at++] = 10;
    else at += encoder.encodeInto(p, out.subarray(at)).written;
  }
  return out.buffer;
}

interface Decoder {
  chunks?: unknown;
  finalize(): unknown;
  flushRemainder?: () => void;
  flushBuffer?: () => void;
}

let installed = false;

/**
 * Gives every content decoder postal-mime creates a finalize that joins its chunks directly. The decoders keep their
 * last bytes back until finalize (the base64 remainder, the quoted-printable buffer), so those are flushed first;
 * both flushes leave nothing behind, so the original finalize, the fallback for a chunk of another kind, still sees
 * every byte once. If postal-mime's internals are not the expected shape, nothing is changed.
 */
export function installChunkJoin(): void {
  if (installed) return;
  installed = true;
  // MimeNode is not exported; the root node of a parser instance is one.
  const root = (new PostalMime() as unknown as { root?: object }).root;
  const proto = root ? (Object.getPrototypeOf(root) as { setupContentDecoder?: (enc: string) => void }) : null;
  const setup = proto?.setupContentDecoder;
  if (!proto || typeof setup !== 'function') return;
  proto.setupContentDecoder = function (this: { contentDecoder?: Decoder | null }, enc: string): void {
    setup.call(this, enc);
    const d = this.contentDecoder;
    if (!d || !Array.isArray(d.chunks) || typeof d.finalize !== 'function') return;
    const original = d.finalize;
    d.finalize = function (this: Decoder) {
      this.flushRemainder?.();
      this.flushBuffer?.();
      return joinChunks(this.chunks as unknown[]) ?? original.call(this);
    };
  };
}
