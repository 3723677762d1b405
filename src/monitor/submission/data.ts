// The message a logged-in client sends after DATA, as Postern passes it to the server: a bare CR or bare LF becomes
// CRLF, so that the server sees the message end exactly where Postern does (a line of one dot between CRLFs) and
// no other reader can find an end Postern did not (SMTP smuggling, CVE-2023-51764 class; Postfix's
// smtpd_forbid_bare_newline = normalize). On the way it counts the octets and reads the Message-ID from the header
// block, which is all it keeps: the message itself streams through.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** The most of the header block kept to look for the Message-ID. */
const MAX_HEADER = 65_536;

/** Where the line that goes on at `from` ends: its first CR or LF, or the end of `d`. */
function lineEnd(d: Buffer, from: number): number {
  const cr = d.indexOf(CR, from);
  const lf = d.indexOf(LF, from);
  if (cr < 0) return lf < 0 ? d.length : lf;
  return lf < 0 ? cr : Math.min(cr, lf);
}

export class DataScanner {
  /** Octets of the message, without the final dot line and the dots of dot-stuffing (RFC 5321 §4.5.2). */
  size = 0;
  /** Bare CRs and LFs that became CRLF. */
  normalised = 0;
  private atLineStart = true;
  /** The line so far is one dot (after the line start): with CRLF it ends the message. */
  private dotLine = false;
  private pendingCr = false;
  private header: Buffer[] = [];
  private headerLen = 0;
  private headerDone = false;

  /**
   * Scans `d`: `out` is what to pass on (normalised), `used` how many octets of `d` belong to the message (the rest
   * are commands after it), `done` whether the final dot line was seen.
   */
  push(d: Buffer): { out: Buffer; used: number; done: boolean } {
    const out = Buffer.allocUnsafe(d.length * 2 + 2);
    let o = 0;
    for (let i = 0; i < d.length; i++) {
      const b = d[i];
      if (this.pendingCr) {
        this.pendingCr = false;
        if (b !== LF) this.normalised++;
        out[o++] = CR;
        out[o++] = LF;
        if (this.endLine()) return this.finish(out, o, i + (b === LF ? 1 : 0));
        if (b === LF) continue;
      }
      if (b === CR) {
        this.pendingCr = true;
        continue;
      }
      if (b === LF) {
        this.normalised++;
        out[o++] = CR;
        out[o++] = LF;
        if (this.endLine()) return this.finish(out, o, i + 1);
        continue;
      }
      if (this.atLineStart && b === DOT) {
        this.dotLine = true;
        this.atLineStart = false;
        out[o++] = b;
        continue;
      }
      // The rest of the line up to its CR or LF, copied at once. A dot that started it was stuffing, not message.
      this.dotLine = false;
      this.atLineStart = false;
      const end = lineEnd(d, i);
      d.copy(out, o, i, end);
      o += end - i;
      this.size += end - i;
      i = end - 1;
    }
    return this.finish(out, o, d.length, false);
  }

  /** A CRLF was written; true when it ended the final dot line. */
  private endLine(): boolean {
    if (this.dotLine) return true;
    this.size += 2;
    this.atLineStart = true;
    return false;
  }

  private finish(out: Buffer, o: number, used: number, done = true): { out: Buffer; used: number; done: boolean } {
    const b = out.subarray(0, o);
    if (!this.headerDone) this.keepHeader(done ? b.subarray(0, Math.max(0, b.length - 3)) : b);
    return { out: b, used, done };
  }

  private keepHeader(b: Buffer): void {
    if (!b.length) return;
    const room = MAX_HEADER - this.headerLen;
    const part = b.subarray(0, room);
    this.header.push(part);
    this.headerLen += part.length;
    const all = Buffer.concat(this.header);
    this.header = [all];
    const end = all.indexOf('\r\n\r\n');
    if (end >= 0 || (all[0] === CR && all[1] === LF) || this.headerLen >= MAX_HEADER) {
      this.headerDone = true;
      if (end >= 0) this.header = [all.subarray(0, end + 2)];
    }
  }

  /** The Message-ID header's value (its first `<…>`), or null when the header block has none. */
  messageId(): string | null {
    const text = Buffer.concat(this.header).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
    const m = /^message-id:[ \t]*(.*)$/im.exec(text);
    if (!m) return null;
    const id = /<[^<>\s]{1,500}>/.exec(m[1])?.[0] ?? m[1].trim().slice(0, 500);
    return id || null;
  }
}
