// The spool. The gateway that relays its own mail appends each message to a segment file (segments.ts); other
// writers (a cluster worker, whose primary relays; the command line, next to a running gateway) write a file per
// message: written to a temporary name, fsynced, renamed into place, directory fsynced. Reads and removals look in
// the segments first and then for the file, so both kinds are delivered, whichever process wrote them.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SegmentLog, syncDirectory, type SegmentOptions } from './segments.ts';

export interface SpoolOptions {
  /** Append to segment files. Only for the process that also relays (and reads back) what it writes. */
  segments?: boolean | SegmentOptions;
}

export class Spool {
  readonly tmpDir: string;
  readonly queueDir: string;
  readonly segments: SegmentLog | null;
  private compactTimer: NodeJS.Timeout | null = null;

  constructor(root: string, opts: SpoolOptions = {}) {
    this.tmpDir = path.join(root, 'spool', 'tmp');
    this.queueDir = path.join(root, 'spool', 'queue');
    fs.mkdirSync(this.tmpDir, { recursive: true });
    fs.mkdirSync(this.queueDir, { recursive: true });
    this.segments = opts.segments ? new SegmentLog(path.join(root, 'spool', 'segments'), opts.segments === true ? {} : opts.segments) : null;
    if (this.segments) {
      const log = this.segments;
      this.compactTimer = setInterval(() => void log.compact().catch(() => undefined), 60_000);
      this.compactTimer.unref();
    }
  }

  /** Stops the compaction timer and closes the segment files. */
  close(): void {
    if (this.compactTimer) clearInterval(this.compactTimer);
    this.segments?.close();
  }

  pathOf(id: string): string {
    return path.join(this.queueDir, `${id}.eml`);
  }

  /**
   * Writes and fsyncs the file and renames it into the queue. The directory fsync is the caller's (batched).
   * Only the fdatasync goes to the thread pool. Open, write, close and rename of a file this size are page-cache
   * operations of a few microseconds; each thread-pool hop costs more than that in wake-ups, and this runs for
   * every message.
   */
  async write(id: string, data: Buffer): Promise<void> {
    if (this.segments) return this.segments.append(id, data);
    await this.writeFile(id, data);
  }

  private writeFile(id: string, data: Buffer): Promise<string> {
    const tmp = path.join(this.tmpDir, `${id}.eml`);
    const final = this.pathOf(id);
    return new Promise((resolve, reject) => {
      // A full disk leaves a partial file behind; it would never be delivered, but it would keep the space.
      const fail = (err: unknown) => {
        try {
          fs.rmSync(tmp, { force: true });
        } catch {
          // Nothing more to do; recovery at the next start clears spool/tmp.
        }
        reject(err as Error);
      };
      let fd: number;
      try {
        fd = fs.openSync(tmp, 'w', 0o640);
      } catch (err) {
        return fail(err);
      }
      try {
        for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off);
      } catch (err) {
        fs.closeSync(fd);
        return fail(err);
      }
      fs.fdatasync(fd, (syncErr) => {
        try {
          // close(2) can report a deferred write error (NFS, ENOSPC on some filesystems): it must fail the write.
          fs.closeSync(fd);
          if (syncErr) return fail(syncErr);
          fs.renameSync(tmp, final);
          resolve(final);
        } catch (err) {
          fail(syncErr ?? err);
        }
      });
    });
  }

  /** Makes renames into the queue directory durable (fsync(2) of a file does not cover its directory entry). */
  async syncDir(): Promise<void> {
    // A segment's append is durable when write() resolves, its directory entry included.
    if (this.segments) return;
    await syncDirectory(this.queueDir);
  }

  async read(id: string): Promise<Buffer> {
    return (await this.segments?.read(id)) ?? fsp.readFile(this.pathOf(id));
  }

  /** Removes the message's record or file; one that is gone already is not an error. */
  remove(id: string): Promise<void> {
    if (this.segments?.remove(id)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      fs.unlink(this.pathOf(id), (err) => (err && err.code !== 'ENOENT' ? reject(err) : resolve()));
    });
  }

  /** Leftovers of an interrupted write; never delivered. */
  async clearTmp(): Promise<number> {
    const names = await fsp.readdir(this.tmpDir);
    await Promise.all(names.map((n) => fsp.rm(path.join(this.tmpDir, n), { force: true })));
    return names.length;
  }

  /** Every message in the spool: segment records and per-message files. */
  async listIds(): Promise<string[]> {
    const names = await fsp.readdir(this.queueDir);
    const files = names.filter((n) => n.endsWith('.eml')).map((n) => n.slice(0, -4));
    if (!this.segments) return files;
    return [...new Set([...this.segments.ids(), ...files])];
  }
}

export { syncDirectory as syncDir } from './segments.ts';

/** What the spool under `root` holds on disk, read from another process (`postern queue list`) without scanning. */
export function spoolOnDisk(root: string): { segmentFiles: number; segmentBytes: number; files: number; damaged: number } {
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  const segDir = path.join(root, 'spool', 'segments');
  let segmentFiles = 0;
  let segmentBytes = 0;
  let damaged = 0;
  for (const n of list(segDir)) {
    if (n.endsWith('.bad')) damaged++;
    if (!n.endsWith('.seg')) continue;
    try {
      segmentBytes += fs.statSync(path.join(segDir, n)).size;
      segmentFiles++;
    } catch {
      // Deleted meanwhile by the running gateway.
    }
  }
  const files = list(path.join(root, 'spool', 'queue')).filter((n) => n.endsWith('.eml')).length;
  return { segmentFiles, segmentBytes, files, damaged };
}
