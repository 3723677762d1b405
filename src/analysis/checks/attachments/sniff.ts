// The real type of a file from its first bytes. The types that matter for a verdict are recognised here; file-type
// names the rest (images, media) for the comparison with the declared type. Zip and gzip never go to file-type,
// which inflates parts of them without a size limit.
import { fileTypeFromBuffer } from 'file-type';
import type { Family } from './names.ts';

export type Kind =
  | 'pe'
  | 'elf'
  | 'macho'
  | 'zip'
  | 'rar'
  | '7z'
  | 'ace'
  | 'arj'
  | 'cab'
  | 'gz'
  | 'bz2'
  | 'xz'
  | 'lzh'
  | 'zst'
  | 'tar'
  | 'ole'
  | 'pdf'
  | 'rtf'
  | 'iso'
  | 'vhd'
  | 'vhdx'
  | 'lnk'
  | 'onenote'
  | 'chm'
  | 'html'
  | 'svg';

/** Bytes needed to see every signature below (ISO 9660 and UDF descriptors sit at 32 KiB and up). */
export const SNIFF_BYTES = 0x9006 + 16;

const ascii = (b: Uint8Array, at: number, s: string): boolean => {
  if (at < 0 || at + s.length > b.length) return false;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  return true;
};
const bytes = (b: Uint8Array, at: number, sig: readonly number[]): boolean => {
  if (at + sig.length > b.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
};

const LNK = [0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46];
const ONENOTE = [0xe4, 0x52, 0x5c, 0x7b, 0x8c, 0xd8, 0xa7, 0x4d, 0xae, 0xb1, 0x53, 0x78, 0xd0, 0x29, 0x96, 0xd3];
const OLE = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];

/**
 * Recognises the types that decide a verdict. `head` is the start of the file, `size` its full length and `tail`
 * its last 512 bytes when known (a fixed VHD has its footer only at the end).
 */
export function sniff(head: Uint8Array, tail?: Uint8Array): Kind | undefined {
  const b = head;
  if (b.length < 2) return undefined;
  if (b[0] === 0x4d && b[1] === 0x5a && b.length >= 0x40) {
    const off = b[0x3c] | (b[0x3d] << 8) | (b[0x3e] << 16) | (b[0x3f] << 24);
    if (off >= 0x40 && ascii(b, off, 'PE\0\0')) return 'pe';
  }
  if (bytes(b, 0, [0x7f, 0x45, 0x4c, 0x46])) return 'elf';
  if (b.length >= 8) {
    const be = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    if (be === 0xfeedface || be === 0xfeedfacf || be === 0xcefaedfe || be === 0xcffaedfe) return 'macho';
    // 0xCAFEBABE is also a Java class file, whose next word is its version (45 and up); a fat binary has few archs.
    if (be === 0xcafebabe && ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0 < 20) return 'macho';
  }
  if (b[0] === 0x50 && b[1] === 0x4b && ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6) || (b[2] === 7 && b[3] === 8))) return 'zip';
  if (ascii(b, 0, 'Rar!\x1a\x07')) return 'rar';
  if (bytes(b, 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return '7z';
  if (ascii(b, 7, '**ACE**')) return 'ace';
  if (b[0] === 0x60 && b[1] === 0xea) return 'arj';
  if (ascii(b, 0, 'MSCF')) return 'cab';
  if (b[0] === 0x1f && b[1] === 0x8b) return 'gz';
  if (ascii(b, 0, 'BZh') && b[3] >= 0x31 && b[3] <= 0x39) return 'bz2';
  if (bytes(b, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (bytes(b, 0, [0x28, 0xb5, 0x2f, 0xfd])) return 'zst';
  if (b[2] === 0x2d && b[3] === 0x6c && b[4] === 0x68 && b[6] === 0x2d) return 'lzh';
  if (bytes(b, 0, OLE)) return 'ole';
  if (bytes(b, 0, LNK)) return 'lnk';
  if (bytes(b, 0, ONENOTE)) return 'onenote';
  if (ascii(b, 0, 'ITSF')) return 'chm';
  if (ascii(b, 0, '{\\rt')) return 'rtf';
  if (ascii(b, 0, 'vhdxfile') || ascii(b, 0, 'conectix') || (tail && ascii(tail, tail.length - 512, 'conectix'))) {
    return ascii(b, 0, 'vhdxfile') ? 'vhdx' : 'vhd';
  }
  for (const at of [0x8001, 0x8801, 0x9001]) {
    if (ascii(b, at, 'CD001') || ascii(b, at, 'BEA01') || ascii(b, at, 'NSR02') || ascii(b, at, 'NSR03')) return 'iso';
  }
  if (ascii(b, 257, 'ustar')) return 'tar';
  // Readers accept junk before the header, so malware puts some there.
  if (Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, 1024)).indexOf('%PDF-') >= 0) return 'pdf';
  return markup(b);
}

function markup(b: Uint8Array): Kind | undefined {
  let i = 0;
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) i = 3;
  while (i < b.length && i < 256 && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  if (b[i] !== 0x3c) return undefined;
  const s = Buffer.from(b.buffer, b.byteOffset + i, Math.min(b.length - i, 1024)).toString('latin1').toLowerCase();
  if (/<svg[\s>]/.test(s)) return 'svg';
  if (/<(!doctype html|html|head|body|script|form|iframe|meta|title)[\s>]/.test(s)) return 'html';
  return undefined;
}

export function familyOfKind(k: Kind): Family {
  switch (k) {
    case 'pe':
    case 'elf':
    case 'macho':
      return 'executable';
    case 'ole':
    case 'rtf':
      return 'office';
    case 'pdf':
      return 'pdf';
    case 'iso':
    case 'vhd':
    case 'vhdx':
      return 'disk';
    case 'lnk':
      return 'shortcut';
    case 'html':
      return 'html';
    case 'svg':
      return 'image';
    case 'onenote':
    case 'chm':
      return 'office';
    default:
      return 'archive';
  }
}

/** No control octets in the first 512 bytes: text, which file-type has nothing to say about. */
function looksText(b: Uint8Array): boolean {
  const n = Math.min(b.length, 512);
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d) return false;
  }
  return true;
}

/** file-type's family for what sniff() does not know (images, media), from a bounded prefix. */
export async function otherFamily(head: Uint8Array): Promise<Family | undefined> {
  if (head.length < 4 || looksText(head)) return undefined;
  try {
    const t = await fileTypeFromBuffer(head.subarray(0, 4100));
    if (!t) return undefined;
    if (t.mime.startsWith('image/')) return 'image';
    if (t.mime.startsWith('audio/') || t.mime.startsWith('video/')) return 'media';
    return undefined;
  } catch {
    return undefined;
  }
}
