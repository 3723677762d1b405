// Content-addressed message blobs on the local file system, fsynced; the interface an object-store backend also fits.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../gateway/spool.ts';

export interface BlobStore {
  put(data: Buffer): Promise<string>;
  get(key: string): Promise<Buffer>;
  delete(key: string): Promise<void>;
}

export class FileBlobStore implements BlobStore {
  constructor(private readonly root: string) {
    fs.mkdirSync(root, { recursive: true });
  }

  private file(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`bad blob key ${key}`);
    return path.join(this.root, key.slice(0, 2), `${key}.eml`);
  }

  async put(data: Buffer): Promise<string> {
    const key = createHash('sha256').update(data).digest('hex');
    const final = this.file(key);
    if (fs.existsSync(final)) return key;
    const dir = path.dirname(final);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = `${final}.${process.pid}.${Date.now()}.tmp`;
    const fh = await fsp.open(tmp, 'w', 0o640);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, final);
    await syncDir(dir);
    return key;
  }

  get(key: string): Promise<Buffer> {
    return fsp.readFile(this.file(key));
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.file(key), { force: true });
  }
}
