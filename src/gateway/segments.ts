// The spool's append-only segment files: each accepted message is one record appended to the current segment, and
// every record appended while one fdatasync runs shares the next one (group commit).
//
// Written by hand because no library does this: a file per message costs a file creation, a rename and an unlink
// per message, and on a journalling filesystem each of them waits for the journal that the other messages' fsyncs
// keep committing (the bench:smtp figures in docs/benchmarks.md). A segment costs one append, one share of a
// group fdatasync, and a map entry; the file goes when the last message in it is delivered.
//
// A record: 'PSG1', the id's length (1 byte), 3 bytes zero, the data's length (u32 LE), CRC-32 of id and data
// (u32 LE), the id (ASCII), the data. Records are only appended, by this process alone; a crash can leave the last
// record of a segment torn, which the scan at start-up stops at (its CRC does not match). Which records are
// still wanted is the store's business: recovery drops those of finished messages and of messages never
// committed (relay/queue.ts start()), as it does for per-message files.
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { coalesce } from '../core/coalesce.ts';

const openFile = promisify(fs.open);
const readFile = promisify(fs.read);
const MAGIC = 0x31475350; // 'PSG1' read as u32 LE
const HEADER = 16;

export interface SegmentOptions {
  /** A segment takes no more appends once it is this large. */
  maxBytes?: number;
  /**
   * The current segment, once nothing in it is live, is emptied when it holds this much. Emptying it every time
   * would cost an ftruncate(2) per message at low rates, a metadata change that waits for the filesystem's journal.
   */
  truncateAt?: number;
  /** A full segment whose live records are less than this share of it is compacted... */
  compactBelow?: number;
  /** ...once it is at least this old (ms). */
  compactAfterMs?: number;
  now?: () => number;
}

interface Segment {
  name: string;
  fd: number;
  size: number;
  live: number;
  liveBytes: number;
  createdAt: number;
  /** Takes no more appends: full, or a write or sync on it failed. */
  sealed: boolean;
  /** Reads and fdatasyncs in flight on the descriptor: it is closed only when none is. */
  busy: number;
  removed: boolean;
  /** Damaged (found so at start): renamed to `<name>.bad` when empty, not deleted. */
  keep?: boolean;
}

interface Loc {
  seg: Segment;
  off: number;
  len: number;
}

export class SegmentLog {
  private readonly segs = new Map<string, Segment>();
  private readonly locs = new Map<string, Loc>();
  private current: Segment | null = null;
  private seq = 0;
  /** Segments written to since their last fdatasync, and whether a new segment's directory entry needs a sync. */
  private dirty = new Set<Segment>();
  private dirDirty = false;
  private readonly groupSync: () => Promise<void>;
  private readonly maxBytes: number;
  private readonly compactBelow: number;
  private readonly truncateAt: number;
  private readonly compactAfterMs: number;
  private readonly now: () => number;
  private compacting = false;
  /** Torn tails the scan at start found (`<segment>@<offset>`): what a crash in the middle of an append leaves. */
  readonly torn: string[] = [];
  /** Damaged regions the scan skipped (`<segment>@<from>-<to>`), with good records after them. */
  readonly damaged: string[] = [];
  /** Segment files the scan could not read, with why; they are left alone. */
  readonly unreadable: string[] = [];

  constructor(
    readonly dir: string,
    opts: SegmentOptions = {},
  ) {
    this.maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
    this.compactBelow = opts.compactBelow ?? 0.25;
    this.truncateAt = opts.truncateAt ?? 1024 * 1024;
    this.compactAfterMs = opts.compactAfterMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
    fs.mkdirSync(dir, { recursive: true });
    this.groupSync = coalesce(() => this.syncDirty());
    this.scan();
  }

  /** Ids of the records found at start-up and written since, not yet removed. */
  ids(): string[] {
    return [...this.locs.keys()];
  }

  has(id: string): boolean {
    return this.locs.has(id);
  }

  /** Segment files and their live records, for `postern queue` and the tests. */
  stats(): { segments: number; bytes: number; live: number; liveBytes: number } {
    let bytes = 0;
    let live = 0;
    let liveBytes = 0;
    for (const s of this.segs.values()) {
      bytes += s.size;
      live += s.live;
      liveBytes += s.liveBytes;
    }
    return { segments: this.segs.size, bytes, live, liveBytes };
  }

  /** Appends the record; resolves once it is on disk (a group fdatasync that started after the append). */
  async append(id: string, data: Buffer): Promise<void> {
    const old = this.locs.get(id);
    const loc = this.appendRecord(id, data);
    if (old) this.release(old, id);
    this.locs.set(id, loc);
    try {
      await this.groupSync();
    } catch (err) {
      this.drop(id);
      throw err;
    }
  }

  async read(id: string): Promise<Buffer | undefined> {
    // A record moved by compaction while it was being read is read again from where it is now.
    for (let attempt = 0; ; attempt++) {
      const loc = this.locs.get(id);
      if (!loc) return undefined;
      try {
        return await this.readAt(loc, id);
      } catch (err) {
        if (attempt > 0 || this.locs.get(id) === loc) throw err;
      }
    }
  }

  /**
   * Sealed segments keep no descriptor open (a long backlog would hold hundreds): a read of one opens the file for
   * itself. Those reads are retries and recovery; the first delivery takes the bytes handed over in memory.
   */
  private async readAt(loc: Loc, id: string): Promise<Buffer> {
    const { seg, off, len } = loc;
    const buf = Buffer.allocUnsafe(len);
    const own = seg.fd < 0;
    const fd = own ? await openFile(path.join(this.dir, seg.name), 'r') : seg.fd;
    if (!own) seg.busy++;
    try {
      let done = 0;
      while (done < len) {
        const { bytesRead: n } = await readFile(fd, buf, done, len - done, off + done);
        if (n === 0) throw new Error(`spool segment ${seg.name} ends before the record of ${id}`);
        done += n;
      }
      return buf;
    } finally {
      if (own) fs.close(fd, () => undefined);
      else this.unbusy(seg);
    }
  }

  /** Forgets the record; a segment with nothing left in it is deleted (the current one once it is sealed). */
  remove(id: string): boolean {
    const loc = this.locs.get(id);
    if (!loc) return false;
    this.drop(id);
    return true;
  }

  /**
   * Moves the live records of old, mostly delivered segments into the current one, so that the old files go: a
   * segment's records are appended together and made durable by one sync, and only then read from their new place.
   */
  async compact(): Promise<number> {
    if (this.compacting) return 0;
    this.compacting = true;
    let moved = 0;
    try {
      const now = this.now();
      const old = [...this.segs.values()].filter(
        (seg) => seg !== this.current && !seg.removed && seg.live > 0 && now - seg.createdAt >= this.compactAfterMs && seg.liveBytes < seg.size * this.compactBelow,
      );
      if (!old.length) return 0;
      // One pass over the map for all of them.
      const bySeg = new Map<Segment, [string, Loc][]>(old.map((seg) => [seg, []]));
      for (const [id, loc] of this.locs) bySeg.get(loc.seg)?.push([id, loc]);
      for (const records of bySeg.values()) {
        const copies: [string, Loc, Loc][] = [];
        try {
          for (const [id, loc] of records) {
            const data = await this.read(id);
            // Removed (delivered) while it was being read: nothing to move.
            if (data && this.locs.get(id) === loc) copies.push([id, loc, this.appendRecord(id, data)]);
          }
          await this.groupSync();
        } catch (err) {
          for (const [id, , copy] of copies) this.release(copy, id);
          throw err;
        }
        for (const [id, loc, copy] of copies) {
          if (this.locs.get(id) === loc) {
            this.locs.set(id, copy);
            this.release(loc, id);
            moved++;
          } else this.release(copy, id);
        }
      }
    } finally {
      this.compacting = false;
    }
    return moved;
  }

  close(): void {
    for (const seg of this.segs.values()) this.closeFd(seg);
    this.segs.clear();
    this.locs.clear();
    this.current = null;
  }

  // ---- internals --------------------------------------------------------------------------------------------------

  /**
   * Appends on the event loop: a write(2) of a message into the page cache takes microseconds, less than a hop to
   * the thread pool and back. Only the fdatasync waits there. The record counts as live in its segment; the
   * caller points the id at it.
   */
  private appendRecord(id: string, data: Buffer): Loc {
    const idBytes = Buffer.from(id, 'latin1');
    if (idBytes.length === 0 || idBytes.length > 255) throw new Error(`spool id of ${idBytes.length} bytes`);
    const head = Buffer.alloc(HEADER);
    head.writeUInt32LE(MAGIC, 0);
    head[4] = idBytes.length;
    head.writeUInt32LE(data.length, 8);
    head.writeUInt32LE(crc32(data, crc32(idBytes)), 12);
    const len = HEADER + idBytes.length + data.length;
    const seg = this.writable(len);
    const start = seg.size;
    try {
      this.writeAll(seg.fd, [head, idBytes, data], start);
    } catch (err) {
      // A full disk: take the partial record back so that the segment stays readable to its end.
      try {
        fs.ftruncateSync(seg.fd, start);
      } catch {
        this.seal(seg);
      }
      throw err;
    }
    seg.size = start + len;
    seg.live++;
    seg.liveBytes += len;
    this.dirty.add(seg);
    const loc = { seg, off: start + HEADER + idBytes.length, len: data.length };
    if (seg.size >= this.maxBytes) this.seal(seg);
    return loc;
  }

  private writeAll(fd: number, parts: Buffer[], at: number): void {
    let pos = at;
    for (const p of parts) {
      for (let off = 0; off < p.length; ) {
        const n = fs.writeSync(fd, p, off, p.length - off, pos);
        off += n;
        pos += n;
      }
    }
  }

  private writable(need: number): Segment {
    const cur = this.current;
    if (cur && !cur.sealed && (cur.size === 0 || cur.size + need <= this.maxBytes * 1.5)) return cur;
    if (cur) this.seal(cur);
    // Fixed widths: the names sort in the order the files were made (the scan relies on it).
    const w = (n: number, width: number) => n.toString(36).padStart(width, '0');
    const name = `${w(this.now(), 9)}-${w(process.pid, 6)}-${w(this.seq++, 6)}.seg`;
    const fd = fs.openSync(path.join(this.dir, name), 'wx+', 0o640);
    const seg: Segment = { name, fd, size: 0, live: 0, liveBytes: 0, createdAt: this.now(), sealed: false, busy: 0, removed: false };
    this.segs.set(name, seg);
    this.current = seg;
    this.dirDirty = true;
    return seg;
  }

  private async syncDirty(): Promise<void> {
    const segs = [...this.dirty];
    this.dirty.clear();
    const dir = this.dirDirty;
    this.dirDirty = false;
    const live = segs.filter((s) => !s.removed && s.fd >= 0);
    for (const s of live) s.busy++;
    try {
      await Promise.all(
        live.map((s) =>
          new Promise<void>((resolve, reject) =>
            fs.fdatasync(s.fd, (err) => {
              this.unbusy(s);
              if (err) reject(err);
              else resolve();
            }),
          ),
        ),
      );
      if (dir) await syncDirectory(this.dir);
    } catch (err) {
      // After a failed fsync the kernel may have dropped the dirty pages and cleared the error: nothing more may
      // be appended to these files, and every caller of this sync is told (each message gets a 4xx).
      for (const s of segs) this.seal(s);
      if (dir) this.dirDirty = true;
      throw err;
    }
  }

  private drop(id: string): void {
    const loc = this.locs.get(id);
    if (!loc) return;
    this.locs.delete(id);
    this.release(loc, id);
  }

  /**
   * One record less in its segment. A sealed segment with none left is deleted; the current one is emptied instead
   * once it holds `truncateAt` bytes, so that a drained queue gives its space back and the file is used again.
   */
  private release(loc: Loc, id: string): void {
    const { seg } = loc;
    seg.live--;
    seg.liveBytes -= loc.len + HEADER + id.length;
    if (seg.live > 0) return;
    if (seg.sealed || seg !== this.current) return this.removeSegment(seg);
    if (seg.size < this.truncateAt) return;
    try {
      fs.ftruncateSync(seg.fd, 0);
      seg.size = 0;
      seg.liveBytes = 0;
    } catch {
      this.seal(seg);
    }
  }

  private seal(seg: Segment): void {
    seg.sealed = true;
    if (seg === this.current) this.current = null;
    if (seg.live === 0) this.removeSegment(seg);
    else this.unbusy(seg, false);
  }

  /** Closes the descriptor of a sealed or removed segment once nothing is using it and nothing waits for its sync. */
  private unbusy(seg: Segment, done = true): void {
    if (done && seg.busy > 0) seg.busy--;
    if (seg.busy === 0 && (seg.removed || (seg.sealed && !this.dirty.has(seg)))) this.closeFd(seg);
  }

  private removeSegment(seg: Segment): void {
    if (seg.removed) return;
    seg.removed = true;
    this.segs.delete(seg.name);
    this.dirty.delete(seg);
    if (seg === this.current) this.current = null;
    const file = path.join(this.dir, seg.name);
    if (seg.keep) fs.rename(file, `${file}.bad`, () => undefined);
    else fs.unlink(file, () => undefined);
    if (seg.busy === 0) this.closeFd(seg);
  }

  private closeFd(seg: Segment): void {
    if (seg.fd < 0) return;
    try {
      fs.closeSync(seg.fd);
    } catch {
      // Already closed.
    }
    seg.fd = -1;
  }

  /**
   * Reads every segment left by an earlier run; later records of an id replace earlier ones (compaction). A bad
   * record with no good one after it is the torn tail of a crash. A bad record with good ones after it is damage:
   * the scan finds the next good record and goes on, and the file is kept as `<name>.bad` when it is empty rather
   * than deleted, for whoever looks into it.
   */
  private scan(): void {
    const names = fs.readdirSync(this.dir).filter((n) => n.endsWith('.seg'));
    names.sort();
    const magic = Buffer.alloc(4);
    magic.writeUInt32LE(MAGIC, 0);
    for (const name of names) {
      let buf: Buffer;
      try {
        buf = fs.readFileSync(path.join(this.dir, name));
      } catch (err) {
        // Left where it is for an operator (permissions, a directory of that name): the rest of the spool still goes.
        this.unreadable.push(`${name}: ${(err as Error).message}`);
        continue;
      }
      const size = buf.length;
      const seg: Segment = { name, fd: -1, size, live: 0, liveBytes: 0, createdAt: this.now(), sealed: true, busy: 0, removed: false };
      this.segs.set(name, seg);
      // The length of a valid record at `off`, or 0.
      const recordAt = (off: number): number => {
        if (off + HEADER > size || buf.readUInt32LE(off) !== MAGIC) return 0;
        const idLen = buf[off + 4];
        const len = buf.readUInt32LE(off + 8);
        if (idLen === 0 || off + HEADER + idLen + len > size) return 0;
        if (crc32(buf.subarray(off + HEADER, off + HEADER + idLen + len)) !== buf.readUInt32LE(off + 12)) return 0;
        return HEADER + idLen + len;
      };
      let off = 0;
      while (off < size) {
        let n = recordAt(off);
        if (n === 0) {
          let next = buf.indexOf(magic, off + 1);
          while (next >= 0 && recordAt(next) === 0) next = buf.indexOf(magic, next + 1);
          if (next < 0) {
            this.torn.push(`${name}@${off}`);
            break;
          }
          this.damaged.push(`${name}@${off}-${next}`);
          seg.keep = true;
          off = next;
          n = recordAt(off);
        }
        const idLen = buf[off + 4];
        const id = buf.toString('latin1', off + HEADER, off + HEADER + idLen);
        const prev = this.locs.get(id);
        if (prev) {
          prev.seg.live--;
          prev.seg.liveBytes -= prev.len + HEADER + idLen;
        }
        this.locs.set(id, { seg, off: off + HEADER + idLen, len: n - HEADER - idLen });
        seg.live++;
        seg.liveBytes += n;
        off += n;
      }
    }
    for (const seg of [...this.segs.values()]) if (seg.live === 0) this.removeSegment(seg);
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
