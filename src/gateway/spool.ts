// The spool: message files written to a temporary name, fsynced, renamed into place, directory fsynced.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export class Spool {
  readonly tmpDir: string;
  readonly queueDir: string;

  constructor(root: string) {
    this.tmpDir = path.join(root, 'spool', 'tmp');
    this.queueDir = path.join(root, 'spool', 'queue');
    fs.mkdirSync(this.tmpDir, { recursive: true });
    fs.mkdirSync(this.queueDir, { recursive: true });
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
  write(id: string, data: Buffer): Promise<string> {
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
    await syncDir(this.queueDir);
  }

  read(id: string): Promise<Buffer> {
    return fsp.readFile(this.pathOf(id));
  }

  /** Removes the message's file; one that is gone already is not an error. */
  remove(id: string): Promise<void> {
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

  async listIds(): Promise<string[]> {
    const names = await fsp.readdir(this.queueDir);
    return names.filter((n) => n.endsWith('.eml')).map((n) => n.slice(0, -4));
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
