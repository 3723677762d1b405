// The built-in mailbox store used when no downstream is configured: one Maildir per recipient.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { syncDir } from '../gateway/spool.ts';

export class MaildirStore {
  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true });
  }

  /** The folder of one address; anything that could escape the root is replaced. */
  dirOf(address: string): string {
    const safe = address.toLowerCase().replace(/[^a-z0-9@._+-]/g, '_').replace(/^\.+/, '_');
    return path.join(this.root, safe);
  }

  async deliver(address: string, data: Buffer): Promise<string> {
    const dir = this.dirOf(address);
    await Promise.all(['tmp', 'new', 'cur'].map((d) => fsp.mkdir(path.join(dir, d), { recursive: true })));
    const name = `${Date.now()}.P${process.pid}R${randomBytes(6).toString('hex')}.${os.hostname().replace(/[/:]/g, '_')}`;
    const tmp = path.join(dir, 'tmp', name);
    const fh = await fsp.open(tmp, 'w', 0o640);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path.join(dir, 'new', name));
    await syncDir(path.join(dir, 'new'));
    return name;
  }

  /** Every message file in an address's Maildir (new and cur). */
  async list(address: string): Promise<string[]> {
    const dir = this.dirOf(address);
    const out: string[] = [];
    for (const sub of ['new', 'cur']) {
      const names = await fsp.readdir(path.join(dir, sub)).catch(() => [] as string[]);
      for (const n of names) out.push(path.join(dir, sub, n));
    }
    return out;
  }
}
