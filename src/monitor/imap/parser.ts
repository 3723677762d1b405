// The IMAP command parser of the monitor proxy: frames the client's byte stream into commands (RFC 9051/3501 §2.2,
// §4) and enforces the limits, fed bytes in whatever pieces the socket delivers.
//
// Written by hand, not taken from a library: imapflow and emailjs-imap-handler parse server *responses*, and
// WildDuck's imap-core parser expects a whole command already framed by its own server. A proxy must frame exactly
// as the server behind it will — tags, atoms, quoted strings, synchronising `{n}` and non-synchronising `{n+}`
// literals, literal8 `~{n}` — must decide itself whether to let a synchronising literal come (it answers `+` only
// when it accepts the size), must refuse a size before reading a byte of it, must consume a refused
// non-synchronising literal exactly (or close), and must never read literal bytes as a command: any disagreement
// between proxy and server on where a command ends is a command-injection hole (net-imap #701, JAMES-1862).
//
// Two modes: before login every command is collected whole (literals included, all within max_line) for Postern
// to handle; after login (`streaming`) each line segment and each literal chunk is handed on as soon as it is
// framed, so a large APPEND streams through and the added latency stays a scan of one line.

import { markerAtEnd, readHead, readTag, tokenize, type ArgState, type ImapArg, type ImapCommand, type Marker, type ParseError } from './tokens.ts';

export type { ImapArg, ImapCommand, ParseError, ParseErrorKind } from './tokens.ts';

export interface ParserLimits {
  /** Longest command in octets, counting its lines (and before login its literals). */
  maxLine: number;
  /** Largest synchronising literal accepted after login; also the most a refused non-synchronising one is skipped. */
  maxLiteral: number;
  /** Largest non-synchronising literal (RFC 7888 LITERAL-: 4096). */
  maxNonSyncLiteral: number;
  /** Deepest list nesting before login; after login 64. */
  maxDepthPreAuth: number;
}

export interface ParserSink {
  command(cmd: ImapCommand): void;
  error(err: ParseError): void;
  /** A synchronising literal was accepted: send the client a continuation request. */
  continueLiteral(): void;
  /** A line asked for with expectLine() (an AUTHENTICATE response), or a `DONE` ending IDLE. */
  line(bytes: Buffer): void;
  /** Streaming: the tag and name are known and nothing was handed on yet; a string refuses the command. */
  head?(tag: string, name: string): string | undefined;
  /** Streaming: one line segment to forward, CRLF-terminated, a synchronising literal marker made non-synchronising. */
  segment?(bytes: Buffer): void;
  /** Streaming: literal bytes to forward. */
  literal?(bytes: Buffer): void;
}

const CR = 0x0d;
const LF = 0x0a;
const MAX_DEPTH_POST_AUTH = 64;
/** What is kept of a line too long to buffer: enough for the tag, and the tail where a literal marker would be. */
const KEEP = 64;

interface Open extends ArgState {
  tag: string;
  name: string;
  args: ImapArg[];
  stack: ImapArg[][];
  bytes: number;
  /** Streaming: part of it was already handed on, so a refusal now would leave the server mid-command. */
  forwarded: boolean;
  /** The literal being read, when collecting. */
  literal?: { arg: { value: Buffer }; parts: Buffer[]; binary: boolean };
}

export class ImapParser {
  /** After login: hand commands on as they are framed instead of collecting them. */
  streaming = false;
  private expect: 'command' | 'line' | 'done' = 'command';
  private parts: Buffer[] = [];
  private lineLen = 0;
  /** The current line outgrew its budget: only its head and tail are kept. */
  private overflow: { head: Buffer; tail: Buffer } | null = null;
  private literalLeft = 0;
  /** The command being framed, once its first segment was read. */
  private cmd: Open | null = null;
  /** The command was refused; the rest of it is framed and dropped, and the error given at its end. */
  private skipping: ParseError | null = null;
  private paused = false;
  private held: Buffer | null = null;
  private dead = false;

  constructor(
    private readonly limits: ParserLimits,
    private readonly sink: ParserSink,
  ) {}

  /** The next line is not a command (an AUTHENTICATE response): deliver it through `line()`. */
  expectLine(): void {
    this.expect = 'line';
  }

  /** IDLE is running: a next line of just `DONE` ends it (RFC 2177); any other line is a command. */
  expectDone(): void {
    this.expect = 'done';
  }

  /** Stops framing after the current event; bytes that arrive meanwhile are held for resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused || this.dead) return;
    this.paused = false;
    const held = this.held;
    this.held = null;
    if (held) this.feed(held);
  }

  /**
   * Forgets everything received but not yet framed: after STARTTLS the rest of the plaintext must never be read
   * as commands inside TLS (CVE-2011-0411, IM-09).
   */
  discardBuffered(): number {
    const n = (this.held?.length ?? 0) + this.lineLen;
    this.held = null;
    this.parts = [];
    this.lineLen = 0;
    this.overflow = null;
    return n;
  }

  /** Octets received and not yet framed (held while paused, or part of an unfinished line). */
  get buffered(): number {
    return (this.held?.length ?? 0) + this.lineLen;
  }

  feed(chunk: Buffer): void {
    if (this.dead) return;
    if (this.paused) {
      this.held = this.held ? Buffer.concat([this.held, chunk]) : chunk;
      return;
    }
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.paused && !this.dead) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, len - pos);
        this.literalBytes(chunk.subarray(pos, pos + take));
        pos += take;
        this.literalLeft -= take;
        if (this.literalLeft === 0) this.afterLiteral();
        continue;
      }
      const lf = chunk.indexOf(LF, pos);
      const end = lf < 0 ? len : lf + 1;
      this.take(chunk.subarray(pos, end));
      pos = end;
      if (lf >= 0) this.lineDone();
    }
    if (pos < len && !this.dead) this.held = this.held ? Buffer.concat([chunk.subarray(pos), this.held]) : chunk.subarray(pos);
  }

  /** Keeps a piece of the current line, within the command's budget. */
  private take(piece: Buffer): void {
    if (this.overflow) {
      this.overflow.tail = Buffer.concat([this.overflow.tail, piece]).subarray(-KEEP);
      this.lineLen += piece.length;
      return;
    }
    this.parts.push(piece);
    this.lineLen += piece.length;
    const budget = this.expect === 'line' ? this.limits.maxLine : this.limits.maxLine - (this.cmd?.bytes ?? 0);
    if (this.lineLen > budget + 2) {
      // Too long to be a command: keep the head (for the tag) and the tail (for a literal marker), drop the rest.
      const all = Buffer.concat(this.parts);
      this.overflow = { head: all.subarray(0, KEEP), tail: all.subarray(-KEEP) };
      this.parts = [];
    }
  }

  private lineDone(): void {
    let line: Buffer;
    let tooLong = false;
    if (this.overflow) {
      tooLong = true;
      line = this.overflow.head;
      this.overflow.tail = stripEol(this.overflow.tail);
    } else {
      line = stripEol(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts));
    }
    const raw = this.lineLen;
    const tail = this.overflow?.tail;
    this.parts = [];
    this.lineLen = 0;
    this.overflow = null;
    if (this.expect === 'line') {
      this.expect = 'command';
      if (tooLong) return this.sink.error({ kind: 'line_too_long', tag: null, text: 'Line too long', fatal: false });
      return this.sink.line(line);
    }
    if (this.expect === 'done') {
      this.expect = 'command';
      if (!tooLong && line.length === 4 && line.toString('latin1').toUpperCase() === 'DONE') return this.sink.line(line);
    }
    if (tooLong) {
      const tag = this.cmd?.tag ?? readTag(line);
      this.fail({ kind: 'line_too_long', tag, text: 'Command line too long', fatal: false });
      return this.segmentEnd(tail ?? Buffer.alloc(0));
    }
    if (this.skipping) return this.segmentEnd(line);
    if (!this.cmd && line.length === 0) return; // an empty line is no command; servers ignore it too
    const cr = line.indexOf(CR);
    if (cr >= 0) {
      this.fail({ kind: 'bare_cr', tag: this.cmd?.tag ?? readTag(line), text: 'CR sent without LF', fatal: false });
      return this.segmentEnd(line);
    }
    this.segment(line, raw);
  }

  /** Tokenises one line segment of a command that is still good. */
  private segment(line: Buffer, raw: number): void {
    let i = 0;
    let cmd = this.cmd;
    if (!cmd) {
      const head = readHead(line);
      if ('error' in head) {
        this.fail(head.error);
        return this.segmentEnd(line);
      }
      cmd = this.cmd = { tag: head.tag, name: head.name, args: [], stack: [], bytes: 0, forwarded: false };
      i = head.end;
      if (this.streaming && this.sink.head) {
        const refusal = this.sink.head(cmd.tag, cmd.name);
        if (refusal !== undefined) {
          this.fail({ kind: 'refused', tag: cmd.tag, text: refusal, fatal: false });
          return this.segmentEnd(line);
        }
      }
    }
    cmd.bytes += raw;
    const marker = markerAtEnd(line);
    const stop = marker ? marker.at : line.length;
    const maxDepth = this.streaming ? MAX_DEPTH_POST_AUTH : this.limits.maxDepthPreAuth;
    const err = tokenize(line, i, stop, cmd, maxDepth);
    if (err) {
      this.fail(err);
      return this.segmentEnd(line);
    }
    if (!marker) {
      if (this.streaming) this.forward(cmd, eol(line));
      return this.commandEnd();
    }
    this.openLiteral(line, marker, cmd);
  }

  /** Decides on a literal announced at the end of a good segment. */
  private openLiteral(line: Buffer, m: Marker, cmd: Open): void {
    const collected = !this.streaming;
    const budget = collected ? this.limits.maxLine - cmd.bytes : this.limits.maxLiteral;
    if (m.sync) {
      if (m.size > budget) {
        // Refused before a byte of it is read: the client waits for `+` and, not getting it, sends none (RFC 9051 §7.5).
        this.fail({ kind: 'literal_too_big', tag: cmd.tag, code: 'TOOBIG', text: 'Literal too large', fatal: false });
        return this.commandEnd();
      }
    } else if (m.size > Math.min(budget, this.limits.maxNonSyncLiteral)) {
      // The bytes are already on their way (IM-03): skip exactly that many, or close when that is too many to skip.
      this.fail({
        kind: 'nonsync_too_big',
        tag: cmd.tag,
        code: 'TOOBIG',
        text: `Non-synchronizing literal larger than ${Math.min(budget, this.limits.maxNonSyncLiteral)} octets`,
        fatal: false,
      });
      return this.skipLiteral(m.size);
    }
    const arg = { type: 'literal' as const, value: Buffer.alloc(0), size: m.size, sync: m.sync, binary: m.binary };
    (cmd.stack.at(-1) ?? cmd.args).push(arg);
    if (collected) {
      cmd.bytes += m.size;
      cmd.literal = { arg, parts: [], binary: m.binary };
    } else {
      // Upstream gets every literal non-synchronising: Postern already answered `+` (needs LITERAL+ upstream).
      this.forward(cmd, m.sync ? Buffer.concat([line.subarray(0, line.length - 1), Buffer.from('+}\r\n')]) : eol(line));
    }
    if (m.sync) this.sink.continueLiteral();
    this.literalLeft = m.size;
    if (m.size === 0) this.afterLiteral();
  }

  private literalBytes(b: Buffer): void {
    if (this.skipping) return;
    if (this.cmd?.literal) this.cmd.literal.parts.push(b);
    else this.sink.literal?.(b);
  }

  private afterLiteral(): void {
    const lit = this.cmd?.literal;
    if (!lit || !this.cmd) return;
    this.cmd.literal = undefined;
    lit.arg.value = Buffer.concat(lit.parts);
    // NUL is allowed only in literal8 (RFC 3516); a collected string with one is refused, as Dovecot does.
    if (!lit.binary && lit.arg.value.includes(0)) this.fail({ kind: 'nul', tag: this.cmd.tag, text: 'NUL in literal', fatal: false });
  }

  private forward(cmd: Open, seg: Buffer): void {
    cmd.forwarded = true;
    this.sink.segment?.(seg);
  }

  /** End of a segment of a refused command: follow its literals, so their bytes are never read as commands. */
  private segmentEnd(seg: Buffer): void {
    if (this.dead) return;
    const m = markerAtEnd(seg);
    if (!m || m.sync) return this.commandEnd();
    this.skipLiteral(m.size);
  }

  private skipLiteral(size: number): void {
    if (this.dead) return;
    if (size > this.limits.maxLiteral) {
      this.dead = true;
      this.held = null;
      return this.sink.error({ kind: 'nonsync_too_big', tag: this.skipping?.tag ?? null, text: 'Literal too large to skip', fatal: true });
    }
    this.literalLeft = size;
  }

  private fail(err: ParseError): void {
    if (this.streaming && this.cmd?.forwarded) {
      // The server already holds the start of this command; the stream cannot be put right again.
      this.dead = true;
      this.held = null;
      return this.sink.error({ ...err, fatal: true });
    }
    this.skipping ??= err;
  }

  private commandEnd(): void {
    if (this.dead) return;
    const cmd = this.cmd;
    const err = this.skipping;
    this.cmd = null;
    this.skipping = null;
    if (err) return this.sink.error(err);
    if (!cmd) return;
    if (cmd.stack.length) return this.sink.error({ kind: 'syntax', tag: cmd.tag, text: 'Missing )', fatal: false });
    this.sink.command({ tag: cmd.tag, name: cmd.name, args: cmd.args, bytes: cmd.bytes });
  }
}

function stripEol(b: Buffer): Buffer {
  let n = b.length;
  if (n && b[n - 1] === LF) n--;
  if (n && b[n - 1] === CR) n--;
  return b.subarray(0, n);
}

const CRLF = Buffer.from('\r\n');
const eol = (line: Buffer): Buffer => Buffer.concat([line, CRLF]);
