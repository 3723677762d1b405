// reliability.md D-02: the spool on a real full filesystem (a 64 KiB tmpfs mounted over data_dir/spool). A message
// that cannot be written gets 452 4.3.1, never 250; no partial file stays behind; mail flows again once space
// returns. Needs mount(2), i.e. root: otherwise the file is skipped loudly.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, tempDir, until } from '../harness/postern.ts';
import { STRICT } from '../harness/services.ts';

function mountTmpfs(dir: string, size: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `cannot mount a tmpfs (${String((e as { stderr?: Buffer }).stderr ?? e).trim()})`;
  }
}

const probeDir = tempDir('postern-mount-probe-');
const noMount = mountTmpfs(probeDir, '64k');
if (!noMount) execFileSync('umount', [probeDir]);
fs.rmSync(probeDir, { recursive: true, force: true });
if (noMount) {
  if (STRICT) throw new Error(`required for the disk-full test: ${noMount}`);
  console.warn(`SKIPPED: ${noMount}`);
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const free = (dir: string) => {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
};

/** Fills the filesystem of `dir` until at most `leave` bytes are free (tmpfs counts in pages). */
function fill(file: string, leave: number): void {
  const fd = fs.openSync(file, 'a');
  try {
    const page = Buffer.alloc(4096, 0x78);
    while (free(path.dirname(file)) > leave) {
      try {
        fs.writeSync(fd, page);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

describe.skipIf(noMount)('spool on a full disk', () => {
  it('answers 452 4.3.1 and keeps no partial file, then accepts again when space returns', async () => {
    const dir = tempDir('postern-full-');
    const spool = path.join(dir, 'spool');
    fs.mkdirSync(spool);
    const err = mountTmpfs(spool, '64k');
    expect(err).toBeUndefined();
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    cleanup.push(() => void execFileSync('umount', [spool]));
    const p = await startTestPostern('', { dir });
    cleanup.push(() => p.app.close());
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    const filler = path.join(spool, 'filler');
    const send = (subject: string, bytes: number) =>
      c.sendMail({ from: 'alice@example.org', to: 'bob@localhost', subject, text: `${'y'.repeat(76)}\n`.repeat(Math.ceil(bytes / 77)) });
    // Per-message files and the segments' live records. A failed append is cut off again, so the segment files
    // keep their size; a delivered record stays in the current segment until it holds 1 MiB.
    const segDir = path.join(spool, 'segments');
    const segBytes = () => fs.readdirSync(segDir).reduce((n, f) => n + fs.statSync(path.join(segDir, f)).size, 0);
    const leftovers = () => [
      ...fs.readdirSync(p.app.spool.tmpDir),
      ...fs.readdirSync(p.app.spool.queueDir),
      ...(p.app.spool.segments!.stats().live > 0 ? ['live segment records'] : []),
    ];
    const owned = async () => (await p.app.store.db.selectFrom('messages').select('id').execute()).length;

    // About 20 KiB free: a 40 KiB message fails in the middle of its write.
    fill(filler, 20 * 1024);
    const bytesBefore = segBytes();
    await expect(send('too big for what is left', 40 * 1024)).rejects.toMatchObject({
      responseCode: 452,
      response: '452 4.3.1 Insufficient system storage, try again later',
    });
    expect(leftovers(), 'partial spool file left behind').toEqual([]);
    expect(segBytes(), 'partial record left in a segment').toBe(bytesBefore);
    expect(await owned()).toBe(0);
    // A small one still fits and goes through.
    expect((await send('small', 2 * 1024)).response).toMatch(/^250 /);
    await until(async () => (await p.app.maildir.list('bob@localhost')).length === 1, 10_000, 'first delivery');
    await until(() => leftovers().length === 0, 5_000, 'spool emptied after delivery');

    // Nothing free at all.
    fill(filler, 0);
    expect(free(spool)).toBe(0);
    const bytesFull = segBytes();
    await expect(send('no space', 1024)).rejects.toMatchObject({ responseCode: 452 });
    expect(leftovers()).toEqual([]);
    expect(segBytes()).toBe(bytesFull);
    expect(await owned()).toBe(1);

    // Space returns: mail is taken again.
    fs.rmSync(filler);
    const ok = await send('space is back', 40 * 1024);
    expect(ok.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await until(async () => (await p.app.maildir.list('bob@localhost')).length === 2, 10_000, 'delivery after space returned');
    expect(await owned()).toBe(2);
  });
});

describe('index that cannot be made durable', () => {
  it('answers 451 4.3.0 when the committed rows cannot be fsynced, and owns nothing', async () => {
    const p = await startTestPostern('');
    cleanup.push(() => p.close());
    const durable = p.app.store.durable;
    p.app.store.durable = async () => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    };
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    await expect(c.sendMail({ from: 'alice@example.org', to: 'bob@localhost', subject: 'eio', text: 'x' })).rejects.toMatchObject({
      response: '451 4.3.0 Temporary local problem, please try again later',
    });
    // The rows were committed, then taken out again, and the file removed: nothing of it will be delivered.
    expect(await p.app.store.db.selectFrom('messages').select('id').execute()).toEqual([]);
    expect(await p.app.store.db.selectFrom('recipients').select('msg_id').execute()).toEqual([]);
    expect(await p.app.spool.listIds()).toEqual([]);
    p.app.store.durable = durable;
    expect((await c.sendMail({ from: 'alice@example.org', to: 'bob@localhost', subject: 'ok', text: 'x' })).response).toMatch(/^250 /);
    await until(async () => (await p.app.maildir.list('bob@localhost')).length === 1, 10_000, 'delivery');
    await new Promise((r) => setTimeout(r, 300));
    expect(await p.app.maildir.list('bob@localhost')).toHaveLength(1);
  });
});
