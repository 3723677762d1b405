// The server-to-client half of a logged-in IMAP session: passes the server's responses through as they come,
// framing them (lines and literals) only as far as needed to rewrite CAPABILITY lists (IM-15) and to put Postern's
// own lines (a `+` for a literal, a BAD for a refused command) between two responses, never inside one.

import { capabilitiesIn } from './wire.ts';

const LF = 0x0a;
/** A partial line longer than this is passed on without waiting for its end (a huge SEARCH result). */
const MAX_HELD = 65_536;

export class ResponseStream {
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** The held line grew past MAX_HELD and went out; only its tail is kept to find a literal marker. */
  private passing: Buffer | null = null;
  private literalLeft = 0;
  /** Inside a response: after a literal, before the line that ends it. */
  private mid = false;
  private queued: Buffer[] = [];

  constructor(
    private readonly write: (b: Buffer) => void,
    private readonly rewriteCaps: (caps: string[]) => string[],
  ) {}

  /** Bytes from the server. */
  push(chunk: Buffer): void {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, chunk.length - pos);
        out.push(chunk.subarray(pos, pos + take));
        this.literalLeft -= take;
        pos += take;
        continue;
      }
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0) {
        this.hold(chunk.subarray(pos), out);
        break;
      }
      const piece = chunk.subarray(pos, lf + 1);
      pos = lf + 1;
      if (this.passing) {
        out.push(piece);
        const tail = Buffer.concat([this.passing, piece]).subarray(-64);
        this.passing = null;
        this.endOfLine(tail, out);
        continue;
      }
      const line = this.carryLen ? Buffer.concat([...this.carry, piece]) : piece;
      this.carry = [];
      this.carryLen = 0;
      out.push(this.mid ? line : this.rewrite(line));
      this.endOfLine(line, out);
    }
    if (out.length) this.write(out.length === 1 ? out[0] : Buffer.concat(out));
  }

  /** A line of Postern's own for the client: now if between responses, else after the current one. */
  inject(line: Buffer): void {
    if (this.atBoundary()) this.write(line);
    else this.queued.push(line);
  }

  private atBoundary(): boolean {
    return this.literalLeft === 0 && !this.mid && this.carryLen === 0 && !this.passing;
  }

  private hold(rest: Buffer, out: Buffer[]): void {
    if (this.passing) {
      out.push(rest);
      this.passing = Buffer.concat([this.passing, rest]).subarray(-64);
      return;
    }
    this.carry.push(rest);
    this.carryLen += rest.length;
    if (this.carryLen > MAX_HELD) {
      const all = Buffer.concat(this.carry);
      out.push(all);
      this.passing = all.subarray(-64);
      this.carry = [];
      this.carryLen = 0;
    }
  }

  /**
   * After a complete line: a literal follows if it ends in {n} (status responses and `+` never carry one);
   * otherwise a response just ended, and Postern's queued lines go out.
   */
  private endOfLine(line: Buffer, out: Buffer[]): void {
    this.literalFollows(line);
    if (this.queued.length && this.atBoundary()) out.push(...this.queued.splice(0));
  }

  private literalFollows(line: Buffer): void {
    let end = line.length;
    if (end && line[end - 1] === LF) end--;
    if (end && line[end - 1] === 0x0d) end--;
    if (end === 0 || line[end - 1] !== 0x7d) {
      this.mid = false;
      return;
    }
    const tail = line.toString('latin1', Math.max(0, end - 24), end);
    const m = /~?\{(\d{1,15})\}$/.exec(tail);
    if (!m || (!this.mid && isStatus(line))) {
      this.mid = false;
      return;
    }
    this.literalLeft = Number(m[1]);
    this.mid = true;
  }

  private rewrite(line: Buffer): Buffer {
    // Only `* CAPABILITY` and status lines with a [CAPABILITY] code change; everything else goes out as it came.
    const untagged = line[0] === 0x2a && line.toString('latin1', 2, 13).toUpperCase() === 'CAPABILITY ';
    if (!untagged && !(isStatus(line) && line.includes('[CAPABILITY '))) return line;
    const text = line.toString('latin1');
    const caps = capabilitiesIn(text.trimEnd());
    if (!caps) return line;
    const shown = this.rewriteCaps(caps).join(' ');
    return Buffer.from(untagged ? `* CAPABILITY ${shown}\r\n` : text.replace(/\[CAPABILITY [^\]]*\]/i, `[CAPABILITY ${shown}]`), 'latin1');
  }
}

/** A status response (tagged or untagged OK/NO/BAD/BYE/PREAUTH) or a continuation request: text, no literals. */
function isStatus(line: Buffer): boolean {
  if (line[0] === 0x2b) return true;
  const head = line.toString('latin1', 0, Math.min(line.length, 80));
  return /^\S+ (OK|NO|BAD|BYE|PREAUTH)\b/i.test(head);
}
