// Opens a zip archive from memory with hard caps: member count, declared and inflated sizes, compression ratio and
// overlapping entries are judged from the central directory before anything is inflated, and no member is inflated
// past what the caller needs or what the budget has left.
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import type { Readable } from 'node:stream';
import { SNIFF_BYTES } from './sniff.ts';

export interface ZipLimits {
  /** Most members looked at in one message, over every archive. */
  maxMembers: number;
  /** Most bytes inflated in one message, and most declared by one archive. */
  maxExpandedBytes: number;
  /** Ratio of declared to compressed size above which a member larger than 1 MiB is a bomb. */
  maxRatio: number;
  /** Largest member inflated in full (to open a nested container); larger ones are judged by their start. */
  maxMemberBytes: number;
}

/** What is left for the whole message; readZip takes from it. */
export interface Budget {
  members: number;
  expanded: number;
}

export interface ZipMember {
  /** The name as stored, decoded (UTF-8 flag or CP437 as yauzl does, backslashes as slashes). */
  name: string;
  size: number;
  encrypted: boolean;
  /** The inflated start of the member, or all of it when `complete`. */
  bytes?: Buffer;
  complete: boolean;
  /** Why the member could not be read. */
  unreadable?: string;
}

export interface ZipListing {
  members: ZipMember[];
  /** Reasons this archive is a decompression bomb; when any, nothing was inflated. */
  bomb: string[];
  /** The archive itself could not be read. */
  error?: string;
}

const MIB = 1024 * 1024;

function open(buf: Buffer): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false }, (err, zf) =>
      err ? reject(err) : resolve(zf),
    );
  });
}

/** Reads the central directory, at most `max` entries. */
function list(zf: ZipFile, max: number): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const out: Entry[] = [];
    zf.on('entry', (e: Entry) => {
      out.push(e);
      if (out.length >= max) resolve(out);
      else zf.readEntry();
    });
    zf.on('end', () => resolve(out));
    zf.on('error', reject);
    if (max <= 0) resolve(out);
    else zf.readEntry();
  });
}

const decodeName = (e: Entry): string =>
  yauzl.getFileNameLowLevel(e.generalPurposeBitFlag, e.fileName as unknown as Buffer, e.extraFields, false);

/** Inflates up to `want` bytes of an entry; stops the inflater as soon as it has them. */
function readStart(zf: ZipFile, e: Entry, want: number): Promise<{ bytes: Buffer; ended: boolean } | { error: string }> {
  return new Promise((resolve) => {
    zf.openReadStream(e, (err: Error | null, stream: Readable) => {
      if (err) return resolve({ error: err.message });
      const chunks: Buffer[] = [];
      let got = 0;
      let done = false;
      const finish = (r: { bytes: Buffer; ended: boolean } | { error: string }) => {
        if (done) return;
        done = true;
        stream.removeAllListeners('data');
        stream.on('error', () => {});
        if (!('ended' in r) || !r.ended) stream.destroy();
        resolve(r);
      };
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got >= want) finish({ bytes: Buffer.concat(chunks).subarray(0, want), ended: false });
      });
      stream.on('end', () => finish({ bytes: Buffer.concat(chunks), ended: true }));
      stream.on('error', (e2: Error) => finish({ error: e2.message }));
    });
  });
}

/** Central-directory evidence of a bomb: too many members, too many declared bytes, extreme ratios, overlaps. */
function bombReasons(entries: readonly Entry[], declaredCount: number, limits: ZipLimits, budget: Budget): string[] {
  const reasons: string[] = [];
  if (declaredCount > limits.maxMembers || declaredCount > budget.members) reasons.push(`members ${declaredCount}`);
  let declared = 0;
  let worst = 0;
  for (const e of entries) {
    declared += e.uncompressedSize;
    if (e.uncompressedSize > MIB) worst = Math.max(worst, e.uncompressedSize / Math.max(1, e.compressedSize));
  }
  if (declared > limits.maxExpandedBytes) reasons.push(`declared ${declared} bytes`);
  if (worst > limits.maxRatio) reasons.push(`ratio ${Math.round(worst)}`);
  // Entries that share file data (David Fifield's overlapping bomb) expand one stream many times.
  const byOffset = entries.map((e) => [e.relativeOffsetOfLocalHeader, e.compressedSize] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < byOffset.length; i++) {
    if (byOffset[i][0] < byOffset[i - 1][0] + 30 + byOffset[i - 1][1]) {
      reasons.push('overlapping entries');
      break;
    }
  }
  return reasons;
}

/**
 * Lists and reads a zip. `needAll(name, start)` says, from a member's first bytes, whether the whole member is
 * wanted (a nested container); otherwise only its first SNIFF_BYTES are inflated.
 */
export async function readZip(
  buf: Buffer,
  limits: ZipLimits,
  budget: Budget,
  needAll: (name: string, start: Buffer) => boolean,
  stop?: { readonly aborted: boolean },
): Promise<ZipListing> {
  let zf: ZipFile;
  try {
    zf = await open(buf);
  } catch (err) {
    return { members: [], bomb: [], error: (err as Error).message };
  }
  try {
    const declaredCount = zf.entryCount;
    let entries: Entry[];
    try {
      entries = await list(zf, Math.min(declaredCount, limits.maxMembers, budget.members));
    } catch (err) {
      return { members: [], bomb: [], error: (err as Error).message };
    }
    budget.members -= entries.length;
    const bomb = bombReasons(entries, declaredCount, limits, budget);
    const members: ZipMember[] = [];
    for (const e of entries) {
      const name = decodeName(e);
      const encrypted = (e.generalPurposeBitFlag & 1) !== 0;
      const m: ZipMember = { name, size: e.uncompressedSize, encrypted, complete: false };
      members.push(m);
      if (name.endsWith('/') || encrypted || bomb.length || stop?.aborted) continue;
      if (e.compressionMethod !== 0 && e.compressionMethod !== 8) {
        m.unreadable = `compression method ${e.compressionMethod}`;
        continue;
      }
      if (e.uncompressedSize === 0 && e.compressedSize <= 2) {
        m.bytes = Buffer.alloc(0);
        m.complete = true;
        continue;
      }
      // A member that declares 0 bytes but has data is read anyway: the size check then reports the lie.
      const first = Math.min(Math.max(e.uncompressedSize, 1), SNIFF_BYTES, budget.expanded);
      if (first <= 0) {
        bomb.push('expanded bytes over the limit');
        break;
      }
      let r = await readStart(zf, e, first);
      if ('error' in r) {
        m.unreadable = r.error;
        continue;
      }
      budget.expanded -= r.bytes.length;
      if (!r.ended && r.bytes.length < e.uncompressedSize && needAll(name, r.bytes)) {
        if (e.uncompressedSize > limits.maxMemberBytes || e.uncompressedSize > budget.expanded + r.bytes.length) {
          m.bytes = r.bytes;
          m.unreadable = `member of ${e.uncompressedSize} bytes too large to open`;
          continue;
        }
        budget.expanded += r.bytes.length;
        r = await readStart(zf, e, e.uncompressedSize + 1);
        if ('error' in r) {
          m.unreadable = r.error;
          continue;
        }
        budget.expanded -= r.bytes.length;
      }
      m.bytes = r.bytes;
      m.complete = r.ended || r.bytes.length >= e.uncompressedSize;
    }
    return { members, bomb };
  } finally {
    zf.close();
  }
}
