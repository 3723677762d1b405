// Writes the hostile and clean MIME fixtures of cases/ (run: node --import tsx src/analysis/checks/mime/make-cases.ts).
// The bytes are built here rather than by hand because most of them are large or repetitive; the output is committed.
import fs from 'node:fs';
import path from 'node:path';

const dir = path.join(import.meta.dirname, 'cases');

/** The eicar.org test file (68 octets), base64 so that the repository holds no bare signature. */
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');

const head = (subject: string, extra = ''): string =>
  'From: Nora Field <nora.field@partner.example>\r\n' +
  'To: Alice Martin <alice@example.com>\r\n' +
  `Subject: ${subject}\r\n` +
  'Date: Fri, 14 Mar 2025 09:58:00 +0100\r\n' +
  `Message-ID: <${subject.toLowerCase().replace(/[^a-z0-9]+/g, '-')}@partner.example>\r\n` +
  extra;

const b64 = (b: Buffer): string => b.toString('base64').replace(/.{76}/g, '$&\r\n');

const files: Record<string, string> = {};

files['clean-alternative.eml'] =
  head('Quarterly figures', 'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="alt-1"\r\n') +
  '\r\n--alt-1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' +
  'Hello Alice, the figures are below. Gr=C3=BC=C3=9Fe\r\n' +
  '--alt-1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello Alice, the figures are below.</p>\r\n--alt-1--\r\n';

files['clean-invoice-pdf.eml'] =
  head('Invoice 2025-0312', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="mix"\r\n') +
  '\r\n--mix\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nPlease find the invoice attached.\r\n' +
  '--mix\r\nContent-Type: application/pdf; name="invoice-2025-0312.pdf"\r\n' +
  'Content-Disposition: attachment;\r\n filename*0="invoice-2025-0312-for-the-consulting-work-of-february-and-";\r\n' +
  ' filename*1="march-as-agreed.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
  b64(Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n')) +
  '\r\n--mix--\r\n';

/** multipart/mixed nested `n` deep, a text part at the bottom (M-01). */
function nestedMultipart(n: number): string {
  let s = head(`Nested ${n}`, `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0"\r\n`) + '\r\n';
  for (let i = 0; i < n; i++) s += `--b${i}\r\nContent-Type: multipart/mixed; boundary="b${i + 1}"\r\n\r\n`;
  s += `--b${n}\r\nContent-Type: text/plain\r\n\r\nbottom\r\n`;
  for (let i = n; i >= 0; i--) s += `--b${i}--\r\n`;
  return s;
}
files['nested-multipart-300.eml'] = nestedMultipart(300);
files['nested-multipart-20.eml'] = nestedMultipart(20);

/** message/rfc822 nested `n` deep with EICAR at the bottom (M-02). */
export function nestedMessages(n: number): string {
  let inner =
    'From: a@partner.example\r\nSubject: bottom\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="e"\r\n\r\n' +
    '--e\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n' +
    `--e\r\nContent-Type: application/octet-stream; name="eicar.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(EICAR)}\r\n--e--\r\n`;
  for (let i = 1; i < n; i++) {
    inner =
      `From: a@partner.example\r\nSubject: level ${n - i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="l${i}"\r\n\r\n` +
      `--l${i}\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--l${i}\r\nContent-Type: message/rfc822\r\n\r\n${inner}\r\n--l${i}--\r\n`;
  }
  return head(`Forwarded ${n}`, 'MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n') + '\r\n' + inner;
}
files['rfc822-eicar-12-deep.eml'] = nestedMessages(12);
files['rfc822-40-deep.eml'] = nestedMessages(40);

/** One multipart with `n` parts (M-03). */
function manyParts(n: number): string {
  let s = head(`Parts ${n}`, 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n') + '\r\n';
  for (let i = 0; i < n; i++) s += `--p\r\n\r\n${i}\r\n`;
  return s + '--p--\r\n';
}
files['parts-1500.eml'] = manyParts(1500);
files['parts-900.eml'] = manyParts(900);

/** A Content-Type with `n` RFC 2231 sections of one parameter (M-04). */
function paramFlood(n: number): string {
  let ct = 'application/octet-stream';
  for (let i = 0; i < n; i++) ct += `;\r\n name*${i}*=%41`;
  return (
    head(`Params ${n}`, 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="f"\r\n') +
    `\r\n--f\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--f\r\nContent-Type: ${ct}\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--f--\r\n`
  );
}
files['param-flood-10000.eml'] = paramFlood(10_000);

/** A header block just over 256 KiB: 4,000 To: lines (H-05). */
files['header-block-300k.eml'] =
  head('Announcement') +
  Array.from({ length: 4_000 }, (_, i) => `To: "Recipient number ${i} of the big list" <r${i}@list.partner.example>\r\n`).join('') +
  '\r\nhello\r\n';

files['only-attachment.eml'] =
  head('Scan 0312', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="s"\r\n') +
  `\r\n--s\r\nContent-Type: application/pdf; name="scan.pdf"\r\nContent-Disposition: attachment; filename="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(Buffer.from('%PDF-1.4\n%%EOF\n'))}\r\n--s--\r\n`;

files['html-only.eml'] =
  head('Spring offers', 'MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n') + '\r\n<html><body><p>Offers</p></body></html>\r\n';

files['cte-on-multipart.eml'] =
  head('Encoded multipart', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="c"\r\nContent-Transfer-Encoding: base64\r\n') +
  '\r\n--c\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-rot13\r\n\r\nuryyb\r\n--c--\r\n';

files['charset-unknown.eml'] =
  head('Charset', 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="DEFAULT_CHARSET"\r\n') + '\r\nhello\r\n';

files['boundary-not-closed.eml'] =
  head('Truncated', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="t"\r\n') +
  '\r\n--t\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--t\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n';

/** A multipart whose boundary is `n` characters long (M-05). */
function longBoundary(n: number): string {
  const b = 'L'.repeat(n);
  return head(`Long boundary ${n}`, `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${b}"\r\n`) + `\r\n--${b}\r\nContent-Type: text/plain\r\n\r\nbody\r\n--${b}--\r\n`;
}
files['boundary-2000-chars.eml'] = longBoundary(2_000);
files['boundary-3000-chars.eml'] = longBoundary(3_000);

files['multipart-no-mime-version.eml'] =
  head('No version', 'Content-Type: multipart/mixed; boundary="v"\r\n') +
  `\r\n--v\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--v\r\nContent-Type: application/zip; name="a.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n--v--\r\n`;

files['base64-rfc822-nested.eml'] =
  head('Encoded forward', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="o"\r\n') +
  `\r\n--o\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--o\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(Buffer.from(manyParts(1_200)))}\r\n--o--\r\n`;

if (process.argv[1] === import.meta.filename) {
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, 'latin1');
  console.log(`wrote ${Object.keys(files).length} files to ${dir}`);
}
