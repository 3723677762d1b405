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

  /** Writes and fsyncs the file and renames it into the queue. The directory fsync is the caller's (batched). */
  async write(id: string, data: Buffer): Promise<string> {
    const tmp = path.join(this.tmpDir, `${id}.eml`);
    try {
      const fh = await fsp.open(tmp, 'w', 0o640);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        // close(2) can report a deferred write error (NFS, ENOSPC on some filesystems): it must fail the write.
        await fh.close();
      }
      const final = this.pathOf(id);
      await fsp.rename(tmp, final);
      return final;
    } catch (err) {
      // A full disk leaves a partial file behind; it would never be delivered, but it would keep the space.
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Makes renames into the queue directory durable (fsync(2) of a file does not cover its directory entry). */
  async syncDir(): Promise<void> {
    await syncDir(this.queueDir);
  }

  read(id: string): Promise<Buffer> {
    return fsp.readFile(this.pathOf(id));
  }

  async remove(id: string): Promise<void> {
    await fsp.rm(this.pathOf(id), { force: true });
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
