import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SegmentLog } from './segments.ts';
import { Spool } from './spool.ts';

const dirs: string[] = [];
const logs: SegmentLog[] = [];
afterEach(() => {
  for (const l of logs.splice(0)) l.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-seg-'));
  dirs.push(d);
  return d;
}

function open(dir: string, opts: ConstructorParameters<typeof SegmentLog>[1] = {}): SegmentLog {
  const l = new SegmentLog(dir, opts);
  logs.push(l);
  return l;
}

const files = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
const msg = (i: number, size = 200) => Buffer.from(`Subject: m${i}\r\n\r\n${'x'.repeat(size)}\r\n.leading dot\r\n`, 'latin1');

describe('spool segments', () => {
  it('reads back what it appended, byte for byte, and gives the file back once every record is removed', async () => {
    const dir = tmp();
    const log = open(dir, { truncateAt: 1 });
    const bin = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256));
    await Promise.all([log.append('a1', msg(1)), log.append('b2', bin), log.append('c3', Buffer.alloc(0))]);
    expect(await log.read('a1')).toEqual(msg(1));
    expect(await log.read('b2')).toEqual(bin);
    expect(await log.read('c3')).toEqual(Buffer.alloc(0));
    expect(await log.read('zz')).toBeUndefined();
    expect(log.ids().sort()).toEqual(['a1', 'b2', 'c3']);
    expect(files(dir)).toHaveLength(1);
    for (const id of ['a1', 'b2', 'c3']) expect(log.remove(id)).toBe(true);
    expect(log.remove('a1')).toBe(false);
    // The current segment is emptied rather than deleted: a drained queue takes no space.
    expect(fs.statSync(path.join(dir, files(dir)[0])).size).toBe(0);
    expect(log.stats()).toMatchObject({ live: 0, bytes: 0 });
  });

  it('keeps appending to a small drained segment rather than truncating it for every message', async () => {
    const dir = tmp();
    const log = open(dir, { truncateAt: 4096 });
    await log.append('a', msg(1, 1000));
    log.remove('a');
    const size = () => fs.statSync(path.join(dir, files(dir)[0])).size;
    expect(size()).toBeGreaterThan(1000);
    await log.append('b', msg(2, 1000));
    expect(await log.read('b')).toEqual(msg(2, 1000));
    for (const id of ['c', 'd', 'e']) await log.append(id, msg(3, 1000));
    for (const id of ['b', 'c', 'd', 'e']) log.remove(id);
    expect(size()).toBe(0);
  });

  it('finds every record after a restart, stops at a torn tail, and lets a later copy of an id win', async () => {
    const dir = tmp();
    const first = open(dir);
    for (let i = 0; i < 50; i++) await first.append(`id${i}`, msg(i));
    first.remove('id7');
    first.close();
    // A crash in the middle of an append: half a record at the end of the segment.
    const [seg] = files(dir);
    const whole = fs.readFileSync(path.join(dir, seg));
    const torn = Buffer.concat([whole.subarray(0, 16 + 4 + 100), Buffer.alloc(0)]);
    fs.appendFileSync(path.join(dir, seg), torn.subarray(0, 60));
    const second = open(dir);
    // A removal is the store's to remember (recovery drops finished messages): the record of id7 is still found.
    expect(second.ids()).toHaveLength(50);
    expect(second.torn).toEqual([`${seg}@${whole.length}`]);
    for (let i = 0; i < 50; i++) expect(await second.read(`id${i}`)).toEqual(msg(i));
    // New mail goes to a new segment, never after the torn record.
    await second.append('id3', Buffer.from('the newer copy'));
    second.close();
    const third = open(dir);
    expect(files(dir)).toHaveLength(2);
    expect((await third.read('id3'))!.toString()).toBe('the newer copy');
  });

  it('skips a damaged record, keeps the good ones after it, and keeps the damaged file rather than deleting it', async () => {
    const dir = tmp();
    const log = open(dir);
    for (let i = 0; i < 3; i++) await log.append(`id${i}`, msg(i));
    log.close();
    const name = files(dir)[0];
    const file = path.join(dir, name);
    const bytes = fs.readFileSync(file);
    const second = bytes.indexOf(Buffer.from('Subject: m1'));
    bytes[second + 3] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const again = open(dir);
    expect(again.ids().sort()).toEqual(['id0', 'id2']);
    expect(again.torn).toEqual([]);
    expect(again.damaged).toHaveLength(1);
    expect(await again.read('id2')).toEqual(msg(2));
    again.remove('id0');
    again.remove('id2');
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync(dir)).toEqual([`${name}.bad`]);
    // A later start reads only segments, not the kept file.
    expect(open(dir).ids()).toEqual([]);
  });

  it('leaves a segment it cannot read where it is and goes on with the others', async () => {
    const dir = tmp();
    const log = open(dir);
    await log.append('ok', msg(1));
    log.close();
    fs.mkdirSync(path.join(dir, '000000000-000000-000000.seg'));
    const again = open(dir);
    expect(again.ids()).toEqual(['ok']);
    expect(again.unreadable).toEqual([expect.stringMatching(/^000000000-000000-000000\.seg: EISDIR/)]);
    expect(fs.existsSync(path.join(dir, '000000000-000000-000000.seg'))).toBe(true);
  });

  it('drops a segment whose only record is torn, as a crash in the first append leaves it', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, '000000001-000001-000000.seg'), Buffer.from([0x50, 0x53, 0x47, 0x31, 5, 0, 0, 0, 200, 0]));
    fs.writeFileSync(path.join(dir, '000000002-000001-000000.seg'), Buffer.alloc(0));
    const log = open(dir);
    expect(log.ids()).toEqual([]);
    expect(log.torn).toEqual(['000000001-000001-000000.seg@0']);
    return new Promise<void>((resolve) => setTimeout(() => {
      expect(files(dir)).toEqual([]);
      resolve();
    }, 50));
  });

  it('starts a new segment when one is full, and deletes a full one when its last record goes', async () => {
    const dir = tmp();
    const log = open(dir, { maxBytes: 4096 });
    for (let i = 0; i < 40; i++) await log.append(`id${i}`, msg(i));
    const n = files(dir).length;
    expect(n).toBeGreaterThan(2);
    // Full segments keep no descriptor open; reads open the file for themselves.
    const fds = () => fs.readdirSync('/proc/self/fd').filter((f) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${f}`).startsWith(dir);
      } catch {
        return false;
      }
    }).length;
    expect(fds()).toBe(1);
    const back = await Promise.all(Array.from({ length: 40 }, (_, i) => log.read(`id${i}`)));
    back.forEach((b, i) => expect(b).toEqual(msg(i)));
    expect(fds()).toBe(1);
    for (let i = 0; i < 40; i++) log.remove(`id${i}`);
    await new Promise((r) => setTimeout(r, 50));
    expect(files(dir).length).toBeLessThanOrEqual(1);
  });

  it('moves the few live records of an old segment into the current one and deletes the old file', async () => {
    const dir = tmp();
    let now = 1_000_000;
    const log = open(dir, { maxBytes: 8192, compactAfterMs: 60_000, now: () => now });
    for (let i = 0; i < 30; i++) await log.append(`id${i}`, msg(i, 1000));
    const before = files(dir);
    // Delivered, all but one per segment's worth: id0 (in the first segment) waits for a retry.
    for (let i = 1; i < 30; i++) if (i !== 29) log.remove(`id${i}`);
    expect(await log.compact()).toBe(0); // too young
    now += 120_000;
    expect(await log.compact()).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 50));
    const after = files(dir);
    expect(after).not.toContain(before[0]);
    expect(await log.read('id0')).toEqual(msg(0, 1000));
    expect(await log.read('id29')).toEqual(msg(29, 1000));
    log.close();
    const again = open(dir);
    // Records removed from the current segment are found again (the store says they are done); those of the
    // compacted segment are gone with its file.
    expect(again.ids()).toEqual(expect.arrayContaining(['id0', 'id29']));
    for (let i = 1; i < 8; i++) expect(again.has(`id${i}`)).toBe(false);
    expect(await again.read('id0')).toEqual(msg(0, 1000));
  });

  it('serves per-message files written by another process next to its own segments', async () => {
    const root = tmp();
    const other = new Spool(root);
    await other.write('file1', msg(1));
    const spool = new Spool(root, { segments: true });
    try {
      await spool.write('seg1', msg(2));
      expect((await spool.listIds()).sort()).toEqual(['file1', 'seg1']);
      expect(await spool.read('file1')).toEqual(msg(1));
      expect(await spool.read('seg1')).toEqual(msg(2));
      expect(fs.readdirSync(spool.queueDir)).toEqual(['file1.eml']);
      await spool.remove('file1');
      await spool.remove('seg1');
      expect(await spool.listIds()).toEqual([]);
      expect(fs.readdirSync(spool.queueDir)).toEqual([]);
    } finally {
      spool.close();
    }
  });
});

describe('spool segments under random use', () => {
  it('after any run of appends, removals, compactions and a crash that tears the last append, every record still wanted reads back exactly', async () => {
    const fc = (await import('fast-check')).default;
    const op = fc.oneof(
      fc.record({ t: fc.constant('append' as const), size: fc.integer({ min: 0, max: 3000 }), seed: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ t: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({ t: fc.constant('compact' as const) }),
      fc.record({ t: fc.constant('restart' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), fc.nat(), async (ops, tear) => {
        const dir = tmp();
        let now = 0;
        const opts = { maxBytes: 8192, truncateAt: 4096, compactAfterMs: 10, now: () => now };
        let log = open(dir, opts);
        const wanted = new Map<string, Buffer>();
        let n = 0;
        for (const o of ops) {
          now += 100;
          if (o.t === 'append') {
            const id = `m${n++}`;
            const data = Buffer.alloc(o.size, o.seed);
            if (o.size > 0) data[0] = n & 0xff;
            await log.append(id, data);
            wanted.set(id, data);
          } else if (o.t === 'remove' && wanted.size) {
            const id = [...wanted.keys()][o.pick % wanted.size];
            log.remove(id);
            wanted.delete(id);
          } else if (o.t === 'compact') {
            await log.compact();
          } else if (o.t === 'restart') {
            log.close();
            log = open(dir, opts);
            // Removals are the store's to remember: what the scan finds beyond the wanted set is dropped here, as
            // the relay's recovery drops finished messages.
            for (const id of log.ids()) if (!wanted.has(id)) log.remove(id);
          }
        }
        // A crash in the middle of one more append: its record is torn at some byte.
        const extra = Buffer.alloc(500, 7);
        await log.append('torn', extra);
        log.close();
        const segs = files(dir);
        const last = path.join(dir, segs[segs.length - 1]);
        const size = fs.statSync(last).size;
        fs.truncateSync(last, size - 1 - (tear % (500 + 16 + 4)));
        const after = open(dir, opts);
        for (const [id, data] of wanted) expect(await after.read(id), id).toEqual(data);
        expect(after.has('torn')).toBe(false);
        expect(after.damaged).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});
