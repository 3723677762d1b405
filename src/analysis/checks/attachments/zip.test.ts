// The archive walker's caps on real zip, gzip and tar bytes: random and damaged archives never throw and never inflate past the
// budget; bombs are recognised from the central directory before anything is inflated.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readZip, type Budget, type ZipLimits } from './zip.ts';
import { SNIFF_BYTES } from './sniff.ts';
import { gunzipStart, gzipDeclaredSize, gzipName, readTar } from './tar.ts';

interface YazlZip {
  addBuffer(b: Buffer, name: string, o?: { compress?: boolean; mtime?: Date }): void;
  end(): void;
  outputStream: NodeJS.ReadableStream;
}
const yazl = createRequire(import.meta.url)('yazl') as { ZipFile: new () => YazlZip };

function zip(entries: [string, Buffer][], compress = true): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const [name, data] of entries) z.addBuffer(data, name, { compress, mtime: new Date('2025-01-01T00:00:00Z') });
  z.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    z.outputStream.on('error', reject);
  });
}

const MIB = 1024 * 1024;
const LIMITS: ZipLimits = { maxMembers: 20, maxExpandedBytes: 2 * MIB, maxRatio: 200, maxMemberBytes: MIB };
const budget = (l = LIMITS): Budget => ({ members: l.maxMembers, expanded: l.maxExpandedBytes });
const all = () => true;
const inflated = (m: { bytes?: Buffer }[]) => m.reduce((n, x) => n + (x.bytes?.length ?? 0), 0);

/** Offset of the central directory and of the end record, found from the end. */
function eocd(b: Buffer): { cd: number; end: number } {
  const end = b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  return { cd: b.readUInt32LE(end + 16), end };
}

describe('readZip', () => {
  it('reads the members of a valid archive, whole when asked, the start only otherwise', async () => {
    const big = Buffer.alloc(100_000, 'a');
    const z = await zip([['a.txt', Buffer.from('hello')], ['dir/big.txt', big]]);
    const whole = await readZip(z, LIMITS, budget(), all);
    expect(whole.error).toBeUndefined();
    expect(whole.bomb).toEqual([]);
    expect(whole.members.map((m) => [m.name, m.complete, m.bytes?.length])).toEqual([
      ['a.txt', true, 5],
      ['dir/big.txt', true, 100_000],
    ]);
    const b = budget();
    const starts = await readZip(z, LIMITS, b, () => false);
    expect(starts.members[1].complete).toBe(false);
    expect(starts.members[1].bytes?.length).toBe(SNIFF_BYTES);
    expect(LIMITS.maxExpandedBytes - b.expanded).toBe(5 + SNIFF_BYTES);
  });

  it('calls an archive with more members than the cap a bomb and lists no more than the cap', async () => {
    const z = await zip(Array.from({ length: 30 }, (_, i) => [`f${i}.txt`, Buffer.from(String(i))] as [string, Buffer]));
    const r = await readZip(z, LIMITS, budget(), all);
    expect(r.bomb).toContain('members 30');
    expect(r.members.length).toBe(LIMITS.maxMembers);
    expect(inflated(r.members)).toBe(0);
  });

  it('calls a high compression ratio a bomb without inflating it', async () => {
    const z = await zip([['zeros.bin', Buffer.alloc(4 * MIB)]]);
    const b = budget({ ...LIMITS, maxExpandedBytes: 8 * MIB });
    const r = await readZip(z, { ...LIMITS, maxExpandedBytes: 8 * MIB }, b, all);
    expect(r.bomb.some((x) => x.startsWith('ratio '))).toBe(true);
    expect(b.expanded).toBe(8 * MIB);
    expect(r.members[0].bytes).toBeUndefined();
  });

  it('calls declared sizes over max_expanded_bytes a bomb', async () => {
    const z = await zip([['a.bin', Buffer.alloc(3 * MIB, 7)]], false);
    const r = await readZip(z, LIMITS, budget(), all);
    expect(r.bomb).toContain(`declared ${3 * MIB} bytes`);
    expect(inflated(r.members)).toBe(0);
  });

  it('finds entries that share their data (overlapping bomb)', async () => {
    const z = await zip([['a.txt', Buffer.from('first member')], ['b.txt', Buffer.from('second member')]]);
    const { cd } = eocd(z);
    // Point the second central entry at the first local header.
    const second = z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), cd + 46);
    z.writeUInt32LE(0, second + 42);
    const r = await readZip(z, LIMITS, budget(), all);
    expect(r.bomb).toContain('overlapping entries');
  });

  it('stops at a member that inflates to more than it declares', async () => {
    const z = await zip([['lie.txt', Buffer.alloc(200_000, 'x')]]);
    const { cd } = eocd(z);
    z.writeUInt32LE(1000, cd + 24); // uncompressed size in the central directory
    const b = budget();
    const r = await readZip(z, LIMITS, b, all);
    expect(r.members[0].unreadable).toMatch(/too many bytes|size/);
    expect(LIMITS.maxExpandedBytes - b.expanded).toBeLessThanOrEqual(1000);
  });

  it('never throws and never exceeds the caps on random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), async (bytes, pk) => {
        const buf = Buffer.from(bytes);
        if (pk && buf.length >= 4) buf.write('PK\x03\x04', 0, 'latin1');
        const b = budget();
        const r = await readZip(buf, LIMITS, b, all);
        expect(r.members.length).toBeLessThanOrEqual(LIMITS.maxMembers);
        expect(b.expanded).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws and never exceeds the caps on damaged archives', async () => {
    const members = fc.array(
      fc.tuple(fc.stringMatching(/^[a-z]{1,8}\.(txt|exe|zip|bin)$/), fc.uint8Array({ maxLength: 3000 }), fc.boolean()),
      { minLength: 1, maxLength: 30 },
    );
    const damage = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(members, damage, fc.option(fc.nat()), async (entries, edits, cut) => {
        const z = await zip(entries.map(([n, d, repeat]) => [n, repeat ? Buffer.alloc(d.length * 40, d[0] ?? 1) : Buffer.from(d)]));
        for (const [at, v] of edits) z[at % z.length] = v;
        const buf = cut === null ? z : z.subarray(0, cut % (z.length + 1));
        const limits = { ...LIMITS, maxExpandedBytes: 64 * 1024 };
        const b = budget(limits);
        const r = await readZip(buf, limits, b, all);
        expect(r.members.length).toBeLessThanOrEqual(limits.maxMembers);
        expect(b.expanded).toBeGreaterThanOrEqual(0);
        expect(inflated(r.members)).toBeLessThanOrEqual(limits.maxExpandedBytes);
        if (r.bomb.some((x) => !x.startsWith('expanded'))) expect(inflated(r.members)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe('gzip and tar', () => {
  it('stops inflating a gzip at the number of bytes asked for', async () => {
    const gz = zlib.gzipSync(Buffer.alloc(8 * MIB));
    const r = await gunzipStart(gz, 100_000);
    expect('bytes' in r && r.bytes.length).toBe(100_000);
    expect('ended' in r && r.ended).toBe(false);
    expect(gzipDeclaredSize(gz)).toBe(8 * MIB);
  });

  it('reads the name a gzip header carries', () => {
    const b = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3]), Buffer.from('run.vbs\0'), zlib.deflateRawSync(Buffer.from('x'))]);
    expect(gzipName(b)).toBe('run.vbs');
  });

  it('never throws on random bytes behind a gzip or tar signature', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.nat({ max: 5000 }), async (bytes, want) => {
        const gz = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, bytes[0] ?? 0]), Buffer.from(bytes)]);
        gzipName(gz);
        const r = await gunzipStart(gz, want);
        if ('bytes' in r) expect(r.bytes.length).toBeLessThanOrEqual(want);
        const tar = Buffer.from(bytes);
        if (tar.length > 262) tar.write('ustar', 257, 'latin1');
        const b = budget();
        const t = readTar(tar, LIMITS, b);
        expect(t.members.length).toBeLessThanOrEqual(LIMITS.maxMembers);
        for (const m of t.members) expect(m.bytes?.length ?? 0).toBeLessThanOrEqual(tar.length);
      }),
      { numRuns: 300 },
    );
  });
});
