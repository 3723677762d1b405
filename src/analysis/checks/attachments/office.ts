// Office documents: VBA projects in OLE compound files (cfb) and in OOXML packages, and MSI installers, which are
// OLE files too.
import CFB from 'cfb';

export interface OleFacts {
  /** A VBA project storage: Word's Macros/VBA, Excel's _VBA_PROJECT_CUR/VBA, or a bare vbaProject.bin. */
  vba: boolean;
  /** An Excel 4.0 (XLM) macro sheet in the workbook globals. */
  xlm: boolean;
  /** Password-protected: an encrypted OOXML package, or a Word or Excel 97 file marked encrypted. */
  encrypted: boolean;
  /** Windows Installer package (root CLSID 000C1084-…-46). */
  msi: boolean;
  /** Files embedded as OLE Packager objects (the "double-click to open" icon in a document). */
  packages: { name: string; data: Buffer }[];
  error?: string;
}

const MAX_PACKAGES = 16;

/**
 * An \x01Ole10Native stream: size, type, label, file name, then (after the temporary path) the file itself.
 * Undefined when the stream is not laid out that way.
 */
export function ole10Native(b: Buffer): { name: string; data: Buffer } | undefined {
  let at = 6;
  const cstr = (): string | undefined => {
    const end = b.indexOf(0, at);
    if (end < 0 || end - at > 1024) return undefined;
    const s = b.toString('latin1', at, end);
    at = end + 1;
    return s;
  };
  const label = cstr();
  const file = cstr();
  if (label === undefined || file === undefined || at + 8 > b.length) return undefined;
  at += 4;
  const pathLen = b.readUInt32LE(at);
  at += 4 + pathLen;
  if (at + 4 > b.length) return undefined;
  const size = b.readUInt32LE(at);
  at += 4;
  const name = (file || label).split(/[\\/]/).pop() ?? '';
  return { name, data: b.subarray(at, Math.min(b.length, at + size)) };
}

const MSI_CLSID = new Set(['84100c0000000000c000000000000046', '000c108400000000c000000000000046']);

export function inspectOle(buf: Buffer): OleFacts {
  try {
    const c = CFB.read(buf, { type: 'buffer' });
    let vba = false;
    for (const p of c.FullPaths) {
      const l = p.toLowerCase();
      if (l.endsWith('/vba/dir') || l.endsWith('/_vba_project') || l.includes('/macros/vba/') || l.includes('/_vba_project_cur/')) {
        vba = true;
        break;
      }
    }
    const root = c.FileIndex[0];
    const book = c.FileIndex.find((e) => e.type === 2 && (e.name === 'Workbook' || e.name === 'Book'));
    const globals = walkGlobals(book?.content);
    const word = c.FileIndex.find((e) => e.type === 2 && e.name === 'WordDocument')?.content;
    // FIB fEncrypted (MS-DOC 2.5.2): bit 8 of the flags word at offset 0x0A.
    const wordEncrypted = word !== undefined && word.length > 0x0b && (word[0x0b] & 0x01) !== 0;
    const packages: OleFacts['packages'] = [];
    for (const e of c.FileIndex) {
      if (e.type !== 2 || e.name !== '\u0001Ole10Native' || !e.content) continue;
      const p = ole10Native(Buffer.from(e.content as Uint8Array));
      if (p) packages.push(p);
      if (packages.length >= MAX_PACKAGES) break;
    }
    return {
      packages,
      vba,
      xlm: globals.xlm,
      encrypted: globals.encrypted || wordEncrypted || c.FileIndex.some((e) => e.type === 2 && e.name === 'EncryptedPackage'),
      msi: root !== undefined && MSI_CLSID.has(String(root.clsid).toLowerCase()),
    };
  } catch (err) {
    return { vba: false, xlm: false, encrypted: false, msi: false, packages: [], error: (err as Error).message };
  }
}

/**
 * Walks the BIFF records of the workbook globals up to their EOF: a BOUNDSHEET (0x0085) whose sheet type is 1 is
 * an Excel 4.0 macro sheet, the vehicle of the XLM droppers of 2020-2021 (often "very hidden"); FILEPASS (0x002F)
 * marks an encrypted workbook.
 */
function walkGlobals(w: ArrayLike<number> | undefined): { xlm: boolean; encrypted: boolean } {
  const r = { xlm: false, encrypted: false };
  if (!w) return r;
  let off = 0;
  for (let n = 0; off + 4 <= w.length && n < 100_000; n++) {
    const type = w[off] | (w[off + 1] << 8);
    const len = w[off + 2] | (w[off + 3] << 8);
    if (type === 0x0085 && len >= 8 && w[off + 9] === 1) r.xlm = true;
    if (type === 0x002f) r.encrypted = true;
    if (type === 0x000a) break;
    off += 4 + len;
  }
  return r;
}

export interface PackageFacts {
  /** An OOXML ([Content_Types].xml) or OpenDocument (mimetype) package rather than a plain archive. */
  office: boolean;
  /** vbaProject.bin, or Excel 4.0 macro sheets (xl/macrosheets/). */
  macros: boolean;
}

export function inspectPackage(names: readonly string[]): PackageFacts {
  let office = false;
  let macros = false;
  for (const n of names) {
    const l = n.toLowerCase();
    if (l === '[content_types].xml' || l === 'mimetype') office = true;
    if (l.endsWith('vbaproject.bin') || l.startsWith('xl/macrosheets/')) macros = true;
  }
  return { office, macros };
}

// Relationships that make Word or Excel fetch something when the document opens: a remote template with macros
// (template injection), an OLE object or frame from a URL, or a protocol handler such as ms-msdt: (Follina,
// CVE-2022-30190). A template on the local disk (file:///) is normal and not matched.
const REL = /<Relationship\b[^>]*>/g;
const RISKY_TYPE = /\/(attachedTemplate|oleObject|frame|subDocument)["']/;
const REMOTE = /Target=["']\s*(https?:|\\\\|mhtml:|ms-[a-z-]+:|search-ms:)/i;

/** Remote targets of template, OLE-object, frame and sub-document relationships in a .rels part. */
export function externalRelationships(rels: string): string[] {
  const out: string[] = [];
  for (const m of rels.matchAll(REL)) {
    const r = m[0];
    if (!/TargetMode=["']External["']/i.test(r) || !RISKY_TYPE.test(r)) continue;
    const t = REMOTE.exec(r);
    if (t) out.push(/Target=["']([^"']{0,200})/.exec(r)?.[1] ?? t[1]);
    if (out.length >= 5) break;
  }
  return out;
}
