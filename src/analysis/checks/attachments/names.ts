// What a file name claims: its extension's class, double extensions and bidi controls.

/** Binary programs: Windows PE images and installers, and packages that install or run code. */
const EXECUTABLE = new Set(
  'exe scr com pif cpl msi msp mst dll ocx sys drv appx appxbundle msix msixbundle appinstaller application gadget xll xbap'.split(' '),
);

/** Scripts, shortcuts and containers that run code when opened with a double click. */
const SCRIPT = new Set(
  (
    'bat cmd js jse vbs vbe vb wsf wsh wsc hta ps1 psm1 psd1 ps1xml psc1 reg sct jar jnlp lnk url scf inf iqy slk ' +
    'one onepkg chm msc settingcontent-ms library-ms searchconnector-ms ade adp'
  ).split(' '),
);

/**
 * Weight of the name-only verdict for types that also travel innocently: an Internet shortcut is often just a
 * saved link, though it has been used to skip SmartScreen (CVE-2024-21412).
 */
export function extensionWeight(ext: string): number {
  return ext === 'url' ? 0.5 : 1;
}

/** Disk images that Windows mounts with a double click, hiding their content from gateways that cannot open them. */
const DISK_IMAGE = new Set('iso img vhd vhdx udf dmg'.split(' '));

/** Office formats whose extension says they carry macros. */
const MACRO_ENABLED = new Set('docm dotm xlsm xltm xlam pptm potm ppsm sldm ppam'.split(' '));

/** Office names that promise no macros: a VBA project under one of these names is disguised. */
export const MACRO_FREE = new Set('doc docx dot dotx xls xlsx xlt xltx ppt pptx pps ppsx pot potx rtf'.split(' '));

/** Archive formats this check cannot open. */
const ARCHIVE_OTHER = new Set('rar 7z ace arj cab lzh lha gz tgz bz2 tbz xz txz zst tar z r00 r01 zipx'.split(' '));

/** Extensions a harmless document usually has: the decoy half of a double extension. */
const DECOY = new Set(
  (
    'pdf doc docx xls xlsx ppt pptx txt rtf csv jpg jpeg png gif bmp tif tiff htm html zip rar odt ods mp3 mp4 ' +
    'avi mov wav xml eml msg ics'
  ).split(' '),
);

export type NameClass = 'executable' | 'script' | 'disk' | 'macro' | 'archive-other' | 'zip' | undefined;

/** The last extension, lower case, without the dot; '' when there is none. */
export function extension(name: string): string {
  // Windows drops trailing dots and blanks: "invoice.exe. " opens as invoice.exe.
  const n = stripTrailing(name);
  const dot = n.lastIndexOf('.');
  if (dot < 0 || dot === n.length - 1) return '';
  const ext = n.slice(dot + 1).toLowerCase();
  // A "name.with dots in sentences" is not an extension.
  return ext.length <= 24 && !/\s/.test(ext) ? ext : '';
}

function stripTrailing(name: string): string {
  let end = name.length;
  while (end > 0 && (name[end - 1] === '.' || name[end - 1] === ' ' || name[end - 1] === '\t')) end--;
  return name.slice(0, end);
}

export function classOfExtension(ext: string): NameClass {
  if (EXECUTABLE.has(ext)) return 'executable';
  if (SCRIPT.has(ext)) return 'script';
  if (DISK_IMAGE.has(ext)) return 'disk';
  if (MACRO_ENABLED.has(ext)) return 'macro';
  if (ext === 'zip') return 'zip';
  if (ARCHIVE_OTHER.has(ext)) return 'archive-other';
  return undefined;
}

const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;

/** Bidi controls make "invoice\u202Egpj.exe" display as "invoiceexe.jpg". */
export function hasBidiControl(name: string): boolean {
  return BIDI.test(name);
}

/**
 * "invoice.pdf.exe" or "invoice.pdf          .exe": a dangerous last extension after a decoy one, or after a run of
 * blanks that pushes it out of sight in a narrow column.
 */
export function doubleExtension(name: string): boolean {
  const n = stripTrailing(name);
  const dot = n.lastIndexOf('.');
  if (dot <= 0) return false;
  const last = classOfExtension(extension(n));
  if (last !== 'executable' && last !== 'script' && last !== 'disk') return false;
  const stem = n.slice(0, dot);
  if (/[\s_]{5,}$/.test(stem)) return true;
  return DECOY.has(extension(stem));
}

/** Broad family an extension claims, for comparison with what the bytes are. */
export function familyOfExtension(ext: string): Family | undefined {
  return EXT_FAMILY.get(ext);
}

export type Family = 'executable' | 'archive' | 'office' | 'pdf' | 'disk' | 'shortcut' | 'html' | 'image' | 'media' | 'text' | 'mail';

const EXT_FAMILY = new Map<string, Family>();
const families: Record<Family, string> = {
  executable: 'exe scr com pif cpl dll ocx sys',
  archive: 'zip rar 7z ace arj cab lzh gz tgz bz2 xz tar zst jar',
  office:
    'doc docx docm dot dotx dotm xls xlsx xlsm xlsb xlt xltx xltm xlam ppt pptx pptm pps ppsx ppsm pot potx potm ' +
    'odt ods odp rtf msg oft pub vsd vsdx mpp xps oxps',
  pdf: 'pdf',
  disk: 'iso img vhd vhdx udf dmg',
  shortcut: 'lnk',
  html: 'htm html xhtml shtml',
  image: 'jpg jpeg png gif bmp tif tiff webp heic ico svg',
  media: 'mp3 mp4 m4a wav avi mov mkv ogg webm wma wmv',
  text: 'txt csv ics vcf xml json log md',
  mail: 'eml',
};
for (const [fam, list] of Object.entries(families)) for (const e of list.split(' ')) EXT_FAMILY.set(e, fam as Family);

/** Broad family a declared Content-Type claims; undefined for the generic ones that claim nothing. */
export function familyOfMime(mime: string): Family | undefined {
  const m = mime.toLowerCase();
  if (m === 'application/pdf' || m === 'application/x-pdf') return 'pdf';
  if (m === 'text/html' || m === 'application/xhtml+xml') return 'html';
  if (m === 'text/rtf' || m === 'application/rtf') return 'office';
  if (m === 'message/rfc822') return 'mail';
  if (m.startsWith('image/')) return 'image';
  if (m.startsWith('audio/') || m.startsWith('video/')) return 'media';
  if (m.startsWith('text/') || m === 'application/ics' || m === 'application/json' || m === 'application/xml') return 'text';
  if (/^application\/(x-)?(zip|zip-compressed|x-zip-compressed|rar|x-rar|x-rar-compressed|vnd\.rar|x-7z-compressed|gzip|x-gzip|x-tar|x-ace-compressed|vnd\.ms-cab-compressed|x-compressed|java-archive)$/.test(m)) {
    return 'archive';
  }
  if (/^application\/(msword|vnd\.ms-|vnd\.openxmlformats-|vnd\.oasis\.opendocument\.)/.test(m)) return 'office';
  if (/^application\/(x-msdownload|x-msdos-program|x-dosexec|x-executable|vnd\.microsoft\.portable-executable|x-msi|x-ms-installer)$/.test(m)) {
    return 'executable';
  }
  if (/^application\/(x-iso9660-image|x-cd-image|x-raw-disk-image|x-apple-diskimage)$/.test(m)) return 'disk';
  if (m === 'application/x-ms-shortcut') return 'shortcut';
  return undefined;
}
