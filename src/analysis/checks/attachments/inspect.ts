// Walks every attachment of a parsed message, the members of its archives and the attachments of attached
// messages, and judges each the same way: by name, by real type and by what its format can carry.
import type { Attachment, Email } from 'postal-mime';
import { buildMessageView } from '../../message-view.ts';
import { classOfExtension, doubleExtension, extension, extensionWeight, familyOfExtension, familyOfMime, hasBidiControl, MACRO_FREE, type Family } from './names.ts';
import { familyOfKind, otherFamily, sniff, SNIFF_BYTES, type Kind } from './sniff.ts';
import { readZip, type Budget, type ZipLimits, type ZipListing } from './zip.ts';
import { gunzipStart, gzipDeclaredSize, gzipName, readTar } from './tar.ts';
import { externalRelationships, inspectOle, inspectPackage, ole10Native } from './office.ts';
import { inspectRtf } from './rtf.ts';
import { inspectPdf } from './pdf.ts';
import { inspectHtml } from './html.ts';
import { isEicar, passwordInText } from './text.ts';
import { declaredNames } from './part-names.ts';
import type { AttSymbol } from './symbols.ts';

export interface Limits extends ZipLimits {
  /** Archives nested deeper than this are not opened (ATT_UNSCANNABLE). */
  maxArchiveDepth: number;
  /** Attached messages (message/rfc822) opened below the ones the MIME parser already inlined. */
  maxMessageDepth: number;
  /** Attachments looked at in one message, over all attached messages. */
  maxAttachments: number;
  /** Bytes of a PDF or RTF document scanned. */
  maxDocumentBytes: number;
  /** Bytes of an HTML or SVG attachment parsed. */
  maxHtmlBytes: number;
  /** performance.now() after which the walk stops and reports what it did not see (ATT_UNSCANNABLE). */
  deadline: number;
}

const MAX_DETAILS = 5;

/** Symbols found, each with the names of the files that caused it. */
export class Findings {
  readonly hits = new Map<AttSymbol, { detail: string[]; weight: number }>();
  /** `weight` (0..1) scales the symbol's score; the strongest finding of a symbol sets it. */
  add(sym: AttSymbol, where: string, weight = 1): void {
    const h = this.hits.get(sym);
    if (!h) this.hits.set(sym, { detail: [where], weight });
    else {
      if (h.detail.length < MAX_DETAILS && !h.detail.includes(where)) h.detail.push(where);
      if (weight > h.weight) h.weight = weight;
    }
  }
}

interface Item {
  /** File name as given, '' when there is none. */
  name: string;
  mime?: string;
  bytes: Buffer;
  /** False when only the start of the file was inflated. */
  complete: boolean;
  /** Path shown in details: attachment name, then archive members after a slash. */
  where: string;
  archiveDepth: number;
  messageDepth: number;
  inArchive: boolean;
}

const CONTAINERS = new Set<Kind>(['zip', 'gz', 'tar', 'ole', 'pdf', 'rtf', 'html', 'svg']);
const OOXML_MACRO_FREE = new Set(['docx', 'dotx', 'xlsx', 'xltx', 'pptx', 'potx', 'ppsx', 'rtf']);
const UNSUPPORTED = new Set<Kind>(['rar', '7z', 'ace', 'arj', 'cab', 'bz2', 'xz', 'lzh', 'zst']);

const short = (s: string): string => (s.length > 120 ? `${s.slice(0, 117)}...` : s);

export class Inspector {
  readonly found = new Findings();
  private readonly budget: Budget;
  private attachments = 0;
  private encrypted = false;
  private texts: string[] = [];

  /** Read by readZip between members; true once the time budget is spent or the runner gave up. */
  private readonly stop: { readonly aborted: boolean };
  private outOfTime = false;

  constructor(
    private readonly limits: Limits,
    private readonly ourDomains: readonly string[],
    signal?: AbortSignal,
  ) {
    this.budget = { members: limits.maxMembers, expanded: limits.maxExpandedBytes };
    const self = this;
    this.stop = {
      get aborted() {
        return signal?.aborted === true || self.expired();
      },
    };
  }

  /** Whether the time budget is spent; the first time, says so, since what follows goes unseen. */
  private expired(): boolean {
    if (this.outOfTime) return true;
    if (performance.now() <= this.limits.deadline) return false;
    this.outOfTime = true;
    this.found.add('ATT_UNSCANNABLE', 'time budget spent before every attachment was inspected');
    return true;
  }

  async message(email: Email, messageDepth = 0, where = ''): Promise<void> {
    if (email.text) {
      this.texts.push(email.text.length > 65536 ? email.text.slice(0, 65536) : email.text);
      const t = email.text.trim();
      if (t.length <= 128 && isEicar(Buffer.from(t, 'latin1'))) this.found.add('ATT_EICAR', where || 'body');
    }
    for (const a of email.attachments) {
      if (this.stop.aborted) return;
      if (++this.attachments > this.limits.maxAttachments) {
        this.found.add('ATT_UNSCANNABLE', `more than ${this.limits.maxAttachments} attachments`);
        return;
      }
      await this.attachment(a, messageDepth, where);
    }
  }

  /**
   * Judges, by name alone, the file names the part headers declare that the parser did not report (it keeps one
   * per part). Call after message(), with the raw message.
   */
  async otherNames(raw: Buffer, email: Email): Promise<void> {
    if (!email.attachments.length) return;
    const known = new Set(email.attachments.map((a) => a.filename ?? ''));
    for (const name of declaredNames(raw)) {
      if (known.has(name) || this.stop.aborted) continue;
      await this.judge({ name, bytes: Buffer.alloc(0), complete: false, where: short(`${name} (part header)`), archiveDepth: 0, messageDepth: 0, inArchive: false });
    }
  }

  /** Called once the whole message is walked: the password bonus needs both the archive and the text. */
  finish(subject: string | undefined): void {
    if (!this.encrypted) return;
    const pw = passwordInText([subject ?? '', ...this.texts].join('\n'));
    if (pw !== undefined) this.found.add('ATT_ARCHIVE_PASSWORD_IN_BODY', 'password given in the text');
  }

  private async attachment(a: Attachment, messageDepth: number, parent: string): Promise<void> {
    const c = a.content;
    const bytes = typeof c === 'string' ? Buffer.from(c, 'utf8') : ArrayBuffer.isView(c) ? Buffer.from(c.buffer, c.byteOffset, c.byteLength) : Buffer.from(c);
    const name = a.filename ?? '';
    const where = short(`${parent ? `${parent} > ` : ''}${name || `(${a.mimeType})`}`);
    const mime = a.mimeType.toLowerCase();
    if (mime === 'message/rfc822' || a.rfc822DepthExceeded) return this.attached(bytes, messageDepth, where);
    await this.judge({ name, mime, bytes, complete: true, where, archiveDepth: 0, messageDepth, inArchive: false });
  }

  private async attached(bytes: Buffer, messageDepth: number, where: string): Promise<void> {
    if (messageDepth >= this.limits.maxMessageDepth) return this.found.add('ATT_UNSCANNABLE', `${where}: attached messages nested too deep`);
    // The same bounded parse as the message itself: the structure caps keep a hostile attached message away from
    // the parser too.
    const { email, error } = await (await buildMessageView(bytes)).parse();
    if (!email) return this.found.add('ATT_UNSCANNABLE', `${where}: ${error ?? 'not parsed'}`);
    await this.message(email, messageDepth + 1, where);
  }

  /** Judges one file; a format parser that fails on hostile bytes makes the file unscannable, never clean. */
  private async judge(it: Item): Promise<void> {
    if (this.stop.aborted) return;
    try {
      await this.judgeFile(it);
    } catch (err) {
      this.found.add('ATT_UNSCANNABLE', `${it.where}: ${(err as Error).message}`);
    }
  }

  private async judgeFile(it: Item): Promise<void> {
    const f = this.found;
    const ext = it.name ? extension(it.name) : '';
    if (it.name) {
      if (hasBidiControl(it.name)) f.add('ATT_BIDI_NAME', it.where);
      if (doubleExtension(it.name)) f.add('ATT_DOUBLE_EXTENSION', it.where);
      const cls = classOfExtension(ext);
      if (cls === 'executable') f.add('ATT_EXECUTABLE', it.where);
      else if (cls === 'script') f.add('ATT_SCRIPT', it.where, extensionWeight(ext));
      else if (cls === 'disk') f.add('ATT_DISK_IMAGE', it.where);
      else if (cls === 'macro') f.add('ATT_OFFICE_MACRO', it.where);
    }
    if (isEicar(it.bytes)) f.add('ATT_EICAR', it.where);
    const tail = it.complete && it.bytes.length >= 512 ? it.bytes.subarray(it.bytes.length - 512) : undefined;
    const kind = sniff(it.bytes.subarray(0, SNIFF_BYTES), tail);
    let family: Family | undefined = kind ? familyOfKind(kind) : undefined;
    switch (kind) {
      case 'pe':
      case 'elf':
      case 'macho':
        f.add('ATT_EXECUTABLE', it.where);
        break;
      case 'lnk':
      case 'onenote':
      case 'chm':
        f.add('ATT_SCRIPT', it.where);
        break;
      case 'iso':
      case 'vhd':
      case 'vhdx':
        f.add('ATT_DISK_IMAGE', it.where);
        break;
      case 'zip':
        family = await this.zip(it, ext);
        break;
      case 'gz':
        await this.gzip(it);
        break;
      case 'tar':
        await this.tar(it);
        break;
      case 'ole':
        await this.ole(it, ext);
        break;
      case 'pdf':
        this.pdf(it);
        break;
      case 'rtf':
        await this.rtf(it);
        break;
      case 'html':
      case 'svg':
        this.html(it);
        break;
      default:
        if (kind && UNSUPPORTED.has(kind)) {
          f.add('ATT_ARCHIVE_UNSUPPORTED', `${it.where} (${kind})`);
          // Not opened, so perhaps encrypted: a password in the text for it counts as for an encrypted zip.
          this.encrypted = true;
          if (it.inArchive) f.add('ATT_ARCHIVE_IN_ARCHIVE', it.where);
        } else if (!kind && (ext === 'htm' || ext === 'html' || ext === 'svg' || it.mime === 'text/html' || it.mime === 'image/svg+xml')) {
          this.html(it);
        } else if (!kind && ext === 'eml') {
          if (it.complete) await this.attached(it.bytes, it.messageDepth, it.where);
          else f.add('ATT_UNSCANNABLE', `${it.where}: too large to open`);
        }
    }
    const claims = [familyOfExtension(ext), it.mime ? familyOfMime(it.mime) : undefined];
    if (claims[0] === undefined && claims[1] === undefined) return;
    family ??= await otherFamily(it.bytes);
    if (family) this.mismatch(it, ext, family, claims[0], claims[1]);
  }

  private mismatch(it: Item, ext: string, real: Family, byExt: Family | undefined, byMime: Family | undefined): void {
    const compatible = (claim: Family | undefined): boolean =>
      claim === undefined ||
      claim === real ||
      claim === 'executable' ||
      (claim === 'text' && real === 'html') ||
      (claim === 'archive' && real === 'office') ||
      (claim === 'image' && real === 'html' && ext === 'svg');
    if (!compatible(byExt)) this.found.add('ATT_TYPE_MISMATCH', `${it.where}: ${real} named .${ext}`);
    else if (!compatible(byMime)) this.found.add('ATT_TYPE_MISMATCH', `${it.where}: ${real} declared ${it.mime}`);
  }

  /** Opens a zip; returns 'office' for OOXML and OpenDocument packages, 'archive' otherwise. */
  private async zip(it: Item, ext: string): Promise<Family> {
    const f = this.found;
    if (!this.mayOpen(it)) return 'archive';
    const z = await readZip(it.bytes, this.limits, this.budget, (name, start) => {
      const k = sniff(start);
      if (k && CONTAINERS.has(k)) return true;
      const e = extension(name);
      return e === 'eml' || e === 'htm' || e === 'html' || e === 'svg';
    }, this.stop);
    if (z.error) {
      f.add('ATT_UNSCANNABLE', `${it.where}: ${z.error}`);
      return 'archive';
    }
    const pkg = inspectPackage(z.members.map((m) => m.name));
    if (pkg.office) {
      if (pkg.macros) {
        f.add('ATT_OFFICE_MACRO', it.where);
        if (MACRO_FREE.has(ext)) f.add('ATT_OFFICE_MACRO_DISGUISED', it.where);
      }
      for (const m of z.members) {
        if (!m.bytes || !m.name.toLowerCase().endsWith('.rels')) continue;
        for (const target of externalRelationships(m.bytes.toString('utf8'))) f.add('ATT_OFFICE_EXTERNAL_OBJECT', `${it.where}: ${short(target)}`);
      }
    } else if (it.inArchive) f.add('ATT_ARCHIVE_IN_ARCHIVE', it.where);
    await this.members(it, z, !pkg.office);
    return pkg.office ? 'office' : 'archive';
  }

  /** Whether a container at this depth may be opened; reports it as unscannable when not. */
  private mayOpen(it: Item): boolean {
    if (!it.complete) this.found.add('ATT_UNSCANNABLE', `${it.where}: too large to open`);
    else if (it.archiveDepth >= this.limits.maxArchiveDepth) this.found.add('ATT_UNSCANNABLE', `${it.where}: archives nested too deep`);
    else return true;
    return false;
  }

  /** A gzip file: its one member (named by the header, or by the file name without .gz) judged like a zip member. */
  private async gzip(it: Item): Promise<void> {
    if (!this.mayOpen(it)) return;
    if (it.inArchive) this.found.add('ATT_ARCHIVE_IN_ARCHIVE', it.where);
    const declared = gzipDeclaredSize(it.bytes);
    if (declared > 1024 * 1024 && declared / it.bytes.length > this.limits.maxRatio) {
      this.found.add('ATT_ARCHIVE_BOMB', `${it.where}: ratio ${Math.round(declared / it.bytes.length)}`);
      return;
    }
    const want = Math.min(this.limits.maxMemberBytes, this.budget.expanded);
    const r = await gunzipStart(it.bytes, want);
    if ('error' in r) return this.found.add('ATT_UNSCANNABLE', `${it.where}: ${r.error}`);
    this.budget.expanded -= r.bytes.length;
    if (!r.ended && want < this.limits.maxMemberBytes) this.found.add('ATT_ARCHIVE_BOMB', `${it.where}: expanded bytes over the limit`);
    const base = it.name.replace(/\.t?gz$/i, (m) => (m.toLowerCase() === '.tgz' ? '.tar' : ''));
    const name = gzipName(it.bytes) ?? base;
    await this.judge({ name, bytes: r.bytes, complete: r.ended, where: short(`${it.where}/${name}`), archiveDepth: it.archiveDepth + 1, messageDepth: it.messageDepth, inArchive: false });
  }

  private async tar(it: Item): Promise<void> {
    if (!this.mayOpen(it)) return;
    const t = readTar(it.bytes, this.limits, this.budget);
    if (t.error) this.found.add('ATT_UNSCANNABLE', `${it.where}: ${t.error}`);
    if (it.inArchive) this.found.add('ATT_ARCHIVE_IN_ARCHIVE', it.where);
    await this.members(it, t, true);
  }

  /** Judges the members of an opened archive one level deeper. */
  private async members(it: Item, z: ZipListing, isArchive: boolean): Promise<void> {
    const f = this.found;
    if (z.bomb.length) f.add('ATT_ARCHIVE_BOMB', `${it.where}: ${z.bomb.join(', ')}`);
    for (const m of z.members) {
      if (this.stop.aborted) break;
      const where = short(`${it.where}/${m.name}`);
      if (m.encrypted) {
        this.encrypted = true;
        f.add('ATT_ARCHIVE_ENCRYPTED', where);
      } else if (m.unreadable) f.add('ATT_UNSCANNABLE', `${where}: ${m.unreadable}`);
      const memberName = m.name.slice(m.name.lastIndexOf('/') + 1);
      if (m.name.endsWith('/')) continue;
      await this.judge({
        name: memberName,
        bytes: m.bytes ?? Buffer.alloc(0),
        complete: m.complete,
        where,
        archiveDepth: it.archiveDepth + 1,
        messageDepth: it.messageDepth,
        inArchive: isArchive,
      });
    }
  }

  private async ole(it: Item, ext: string): Promise<void> {
    if (!it.complete) return this.found.add('ATT_UNSCANNABLE', `${it.where}: too large to open`);
    const o = inspectOle(it.bytes);
    // An embedded package is a file inside the document: judged like an archive member, one level down.
    for (const p of o.packages) {
      if (it.archiveDepth >= this.limits.maxArchiveDepth) {
        this.found.add('ATT_UNSCANNABLE', `${it.where}: objects nested too deep`);
        break;
      }
      const where = short(`${it.where}/${p.name || '(package)'}`);
      await this.judge({ name: p.name, bytes: p.data, complete: true, where, archiveDepth: it.archiveDepth + 1, messageDepth: it.messageDepth, inArchive: false });
    }
    if (o.error) return this.found.add('ATT_UNSCANNABLE', `${it.where}: ${o.error}`);
    if (o.msi) this.found.add('ATT_EXECUTABLE', it.where);
    if (o.encrypted) {
      this.encrypted = true;
      this.found.add('ATT_OFFICE_ENCRYPTED', it.where);
    }
    if (o.vba || o.xlm) {
      this.found.add('ATT_OFFICE_MACRO', it.where);
      if (OOXML_MACRO_FREE.has(ext)) this.found.add('ATT_OFFICE_MACRO_DISGUISED', it.where);
    }
  }

  private async rtf(it: Item): Promise<void> {
    const r = inspectRtf(it.bytes, this.limits.maxDocumentBytes, ole10Native);
    for (const c of r.exploitClasses) this.found.add('ATT_RTF_EXPLOIT_OBJECT', `${it.where}: ${short(c)}`);
    for (const p of r.packages) {
      if (it.archiveDepth >= this.limits.maxArchiveDepth) {
        this.found.add('ATT_UNSCANNABLE', `${it.where}: objects nested too deep`);
        break;
      }
      const where = short(`${it.where}/${p.name || '(package)'}`);
      await this.judge({ name: p.name, bytes: p.data, complete: true, where, archiveDepth: it.archiveDepth + 1, messageDepth: it.messageDepth, inArchive: false });
    }
  }

  private pdf(it: Item): void {
    const p = inspectPdf(it.bytes, this.limits.maxDocumentBytes);
    if (p.javascript) this.found.add('ATT_PDF_JAVASCRIPT', it.where);
    if (p.autoJavascript) this.found.add('ATT_PDF_AUTO_JAVASCRIPT', it.where);
    if (p.launch) this.found.add('ATT_PDF_LAUNCH', it.where);
    if (p.embeddedFile) this.found.add('ATT_PDF_EMBEDDED_FILE', it.where);
  }

  private html(it: Item): void {
    const b = it.bytes;
    const h = inspectHtml(b.subarray(0, this.limits.maxHtmlBytes).toString('utf8'), this.ourDomains);
    if (h.smuggling) this.found.add('ATT_HTML_SMUGGLING', it.where);
    for (const d of h.credentialTargets) this.found.add('ATT_HTML_CREDENTIAL_FORM', `${it.where} -> ${d}`);
    if (h.obfuscated) this.found.add('ATT_HTML_OBFUSCATED', it.where);
  }
}
