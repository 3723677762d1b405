// The symbols of the attachments check. An executable, a script, a disk image or a macro document from outside
// reaches the quarantine threshold (8) on its own; a clean PDF, DOCX, zip of CSVs or calendar invite scores 0.
import type { SymbolSpec } from '../../check.ts';

const s = (score: number, description: string): SymbolSpec => ({ score, group: 'attachments', description });

export const SYMBOLS = {
  ATT_EXECUTABLE: s(10, 'Attachment or archive member is a program: PE, ELF or Mach-O bytes, an MSI, or an executable extension'),
  ATT_SCRIPT: s(9, 'Attachment or archive member is a script or shortcut that runs code when opened (.js .vbs .hta .lnk .one …)'),
  ATT_DISK_IMAGE: s(8, 'Attachment or archive member is a disk image (ISO, UDF, IMG, VHD, VHDX, DMG) that hides its content'),
  ATT_DOUBLE_EXTENSION: s(4, 'File name hides a dangerous extension behind a document one or a run of blanks (invoice.pdf.exe)'),
  ATT_BIDI_NAME: s(7, 'File name contains bidi control characters that reorder how it is displayed (right-to-left override)'),
  ATT_TYPE_MISMATCH: s(3, 'Real type from the bytes differs from the declared Content-Type or the file name extension'),
  ATT_ARCHIVE_IN_ARCHIVE: s(2.5, 'Archive nested in another archive'),
  ATT_ARCHIVE_ENCRYPTED: s(5, 'Archive with encrypted members that cannot be inspected'),
  ATT_ARCHIVE_PASSWORD_IN_BODY: s(4, 'Encrypted archive or document (or an archive that cannot be opened), and the message text gives a password'),
  ATT_ARCHIVE_UNSUPPORTED: s(3, 'Archive in a format this check cannot open (rar, 7z, ace, arj, cab, gzip, …)'),
  ATT_ARCHIVE_BOMB: s(8, 'Archive exceeds the member, size or compression-ratio caps, or has overlapping entries'),
  ATT_OFFICE_MACRO: s(8, 'Office document with a VBA project or Excel 4.0 macro sheets, or with a macro-enabled extension'),
  ATT_OFFICE_MACRO_DISGUISED: s(4, 'Macro document under a macro-free name (a vbaProject in a .doc, .docx or .xls)'),
  ATT_OFFICE_ENCRYPTED: s(5, 'Password-protected Office document whose content cannot be inspected'),
  ATT_OFFICE_EXTERNAL_OBJECT: s(7, 'OOXML document that loads a template, OLE object or frame from a remote address when opened (template injection, Follina)'),
  ATT_RTF_EXPLOIT_OBJECT: s(8, 'RTF document embedding an object class that exploits use (Equation Editor, OLE2Link)'),
  ATT_HTML_SMUGGLING: s(8, 'HTML attachment whose script builds a file in the browser and offers it for download'),
  ATT_HTML_CREDENTIAL_FORM: s(8, 'HTML attachment with a password field sent to another site'),
  ATT_HTML_OBFUSCATED: s(4, 'HTML attachment whose script writes or runs a page it decodes first'),
  ATT_PDF_JAVASCRIPT: s(3, 'PDF contains JavaScript'),
  ATT_PDF_AUTO_JAVASCRIPT: s(3, 'PDF runs JavaScript when opened (/OpenAction or /AA)'),
  ATT_PDF_LAUNCH: s(8, 'PDF has a /Launch action that starts a program'),
  ATT_PDF_EMBEDDED_FILE: s(1, 'PDF carries an embedded file'),
  ATT_EICAR: s(10, 'The EICAR anti-virus test file, in an attachment, an archive member or the body'),
  ATT_UNSCANNABLE: s(8, 'An attachment could not be opened (corrupt, truncated, nested too deep, too many parts): not clean'),
} as const satisfies Record<string, SymbolSpec>;

export type AttSymbol = keyof typeof SYMBOLS;
