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
   * Callback fs rather than fs/promises: this runs for every message, and the promise API's FileHandle and
   * extra hops cost the SMTP event loop more than the system calls themselves.
   */
  write(id: string, data: Buffer): Promise<string> {
    const tmp = path.join(this.tmpDir, `${id}.eml`);
    const final = this.pathOf(id);
    return new Promise((resolve, reject) => {
      // A full disk leaves a partial file behind; it would never be delivered, but it would keep the space.
      const fail = (err: Error) => fs.rm(tmp, { force: true }, () => reject(err));
      fs.open(tmp, 'w', 0o640, (err, fd) => {
        if (err) return fail(err);
        writeAll(fd, data, 0, (err) => {
          if (err) return fs.close(fd, () => fail(err));
          fs.fdatasync(fd, (syncErr) => {
            // close(2) can report a deferred write error (NFS, ENOSPC on some filesystems): it must fail the write.
            fs.close(fd, (closeErr) => {
              if (syncErr || closeErr) return fail((syncErr ?? closeErr) as Error);
              fs.rename(tmp, final, (err) => (err ? fail(err) : resolve(final)));
            });
          });
        });
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

function writeAll(fd: number, data: Buffer, off: number, done: (err: Error | null) => void): void {
  if (off >= data.length) return done(null);
  fs.write(fd, data, off, data.length - off, null, (err, n) => (err ? done(err) : writeAll(fd, data, off + n, done)));
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
