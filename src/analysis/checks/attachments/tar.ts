// gzip and tar: a gzip file holds one file (often a tar), inflated as a stream and stopped at the cap; a tar is
// only split at its 512-byte headers, no copy and no inflation.
import zlib from 'node:zlib';
import type { Budget, ZipLimits, ZipListing, ZipMember } from './zip.ts';

/** The file name a gzip header carries (FNAME), which is what gunzip restores. */
export function gzipName(b: Uint8Array): string | undefined {
  if (b.length < 10 || b[0] !== 0x1f || b[1] !== 0x8b) return undefined;
  const flags = b[3];
  if (!(flags & 0x08)) return undefined;
  let at = 10;
  if (flags & 0x04) at += 2 + (b[10] | (b[11] << 8));
  const end = Buffer.from(b.buffer, b.byteOffset, b.length).indexOf(0, at);
  if (end < 0 || end - at > 1024) return undefined;
  return Buffer.from(b.buffer, b.byteOffset + at, end - at).toString('latin1');
}

/** The size gzip declares in its trailer (ISIZE, modulo 2^32; a liar is caught by the inflation cap). */
export const gzipDeclaredSize = (b: Uint8Array): number =>
  b.length >= 18 ? (b[b.length - 4] | (b[b.length - 3] << 8) | (b[b.length - 2] << 16) | (b[b.length - 1] << 24)) >>> 0 : 0;

/** Inflates up to `want` bytes of a gzip file and stops the inflater there. */
export function gunzipStart(buf: Buffer, want: number): Promise<{ bytes: Buffer; ended: boolean } | { error: string }> {
  return new Promise((resolve) => {
    const z = zlib.createGunzip();
    const chunks: Buffer[] = [];
    let got = 0;
    let done = false;
    const finish = (r: { bytes: Buffer; ended: boolean } | { error: string }) => {
      if (done) return;
      done = true;
      z.removeAllListeners('data');
      z.on('error', () => {});
      z.destroy();
      resolve(r);
    };
    z.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got > want) finish({ bytes: Buffer.concat(chunks).subarray(0, want), ended: false });
    });
    z.on('end', () => finish({ bytes: Buffer.concat(chunks), ended: true }));
    z.on('error', (e: Error) => finish({ error: e.message }));
    z.end(buf);
  });
}

const cstr = (h: Buffer, at: number, len: number): string => {
  const s = h.subarray(at, at + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? len : nul).toString('utf8');
};

/** Splits a tar (ustar, GNU long names, pax paths) into its regular files, at most the member caps. */
export function readTar(buf: Buffer, limits: ZipLimits, budget: Budget): ZipListing {
  const members: ZipMember[] = [];
  const bomb: string[] = [];
  let longName: string | undefined;
  let off = 0;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h[0] === 0) break;
    const sizeField = cstr(h, 124, 12).trim();
    const size = h[124] & 0x80 ? Number.MAX_SAFE_INTEGER : /^[0-7]*$/.test(sizeField) ? parseInt(sizeField || '0', 8) : NaN;
    if (!Number.isFinite(size)) return { members, bomb, error: `bad tar header at ${off}` };
    const type = String.fromCharCode(h[156] || 0x30);
    const start = off + 512;
    const end = Math.min(buf.length, start + size);
    if (type === 'L') longName = cstr(buf, start, end - start);
    else if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(buf.subarray(start, Math.min(end, start + 65536)).toString('utf8'));
      if (m) longName = m[1];
    } else if (type === '0' || type === '7') {
      if (members.length >= limits.maxMembers || budget.members <= 0) {
        bomb.push(`members over ${limits.maxMembers}`);
        break;
      }
      budget.members--;
      const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(h, 345, 155) : '';
      const name = longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
      longName = undefined;
      const complete = start + size <= buf.length;
      members.push({ name, size, encrypted: false, bytes: buf.subarray(start, end), complete, ...(complete ? {} : { unreadable: 'truncated' }) });
    } else longName = undefined;
    if (size > buf.length) break;
    off = start + Math.ceil(size / 512) * 512;
  }
  return { members, bomb };
}
