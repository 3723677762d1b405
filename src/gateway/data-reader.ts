// The SMTP command/DATA parser: smtp-server's SMTPStream with Postern's own DATA state machine.
//
// Written by hand because smtp-server leaves gaps that are a gateway's to close (reliability.md 1.1):
// it stores bare CR/LF and smuggled tails verbatim, and unstuffs only "..", leaving ".From:" as is
// (RFC 5321 4.5.2 says a leading period on any line with other characters is deleted). This reader
// works on the raw bytes, so what it sees does not depend on TCP segmentation.
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { PassThrough } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** What the reader saw while reading one message. */
export interface DataFlags {
  bareLf: number;
  bareCr: number;
  /** A lone dot between line ends of which at least one was not CRLF: an end-of-data another MTA may honour. */
  smuggling: boolean;
  nul: boolean;
  eightBit: boolean;
  /** Content arrived in the same segment as the DATA command, before the 354 (RFC 2920 3.1). */
  beforeGo: boolean;
}

export type DataStream = PassThrough & { byteLength: number; sizeExceeded: boolean; flags: DataFlags };

const enum St {
  Normal,
  /** A '.' at a clean line start, held back. */
  Dot,
  /** '.' then CR at a clean line start, held back. */
  DotCr,
  /** A '.' right after a bare line break, already emitted. */
  BareDot,
}

const enum Brk {
  None,
  Clean,
  Bare,
}

interface Internals {
  _dataMode: boolean;
  _dataStream: DataStream | null;
  _maxBytes: number;
  dataBytes: number;
  _remainder: string;
  _countDataBytes(len: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: (err?: Error) => void): void;
}

export class PosternStream extends SMTPStream {
  /** Told of every chunk the client sends, before it is parsed (the connection's early-talker test and data rate). */
  oninput: (chunk: Buffer) => void = () => undefined;
  private st = St.Normal;
  private brk = Brk.Clean;
  private pendingCr = false;
  private depth = 0;
  /** Command-mode view of the chunk being parsed, to tell how each line ended and what follows it. */
  private cmdData = '';
  private cmdPos = 0;

  override startDataMode(maxBytes?: number): DataStream {
    const s = super.startDataMode(maxBytes) as unknown as DataStream;
    s.flags = { bareLf: 0, bareCr: 0, smuggling: false, nul: false, eightBit: false, beforeGo: false };
    this.st = St.Normal;
    this.brk = Brk.Clean;
    this.pendingCr = false;
    return s;
  }

  // Only the socket calls write(); the parser's own re-entry (remainders, the rest after end of data) goes to _write.
  override write(chunk: Buffer, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (chunk && chunk.length) this.oninput(chunk);
    if (typeof encoding === 'function') return super.write(chunk, encoding);
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    const self = this as unknown as Internals;
    if (self._dataMode && this.depth > 0 && self._dataStream && chunk.length > 0) {
      // Called synchronously from the command loop: these bytes came in the segment that held DATA.
      self._dataStream.flags.beforeGo = true;
    }
    if (!self._dataMode) {
      this.cmdData = self._remainder + chunk.toString('binary');
      this.cmdPos = 0;
    }
    this.depth++;
    try {
      super._write(chunk, encoding, next);
    } finally {
      this.depth--;
    }
  }

  /**
   * Called by the connection for each command line, in order: advances over the line and its
   * terminator and says whether it ended in a bare LF and how many bytes follow it in this segment.
   */
  consumeLine(lineLength: number): { bareLf: boolean; following: number } {
    let p = this.cmdPos + lineLength;
    let bareLf = false;
    if (this.cmdData.charCodeAt(p) === CR && this.cmdData.charCodeAt(p + 1) === LF) p += 2;
    else if (this.cmdData.charCodeAt(p) === LF) {
      p += 1;
      bareLf = true;
    }
    this.cmdPos = p;
    return { bareLf, following: Math.max(0, this.cmdData.length - p) };
  }

  /** Up to `max` characters (one per octet) that follow the last line passed to consumeLine in this segment. */
  pending(max: number): string {
    return this.cmdData.slice(this.cmdPos, this.cmdPos + max);
  }

  _feedDataStream(chunk: Buffer, done: (err?: Error) => void): void {
    const self = this as unknown as Internals;
    const stream = self._dataStream as DataStream;
    const flags = stream.flags;
    // At most one octet more than the chunk: the CR of a '.' CR held back from the previous chunk.
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let n = 0;
    let st = this.st;
    let brk = this.brk;
    let pendingCr = this.pendingCr;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      let before = brk;
      if (pendingCr) {
        pendingCr = false;
        if (b === LF) {
          out[n++] = LF;
          brk = Brk.Clean;
          continue;
        }
        flags.bareCr++;
        before = Brk.Bare;
      }
      if (st === St.Dot) {
        st = St.Normal;
        if (b === CR) {
          st = St.DotCr;
          continue;
        }
        if (b === LF) flags.smuggling = true;
        before = Brk.None; // the stuffing dot is dropped; b continues the line
      } else if (st === St.DotCr) {
        st = St.Normal;
        if (b === LF) {
          // End of data: everything emitted so far (including the CRLF before the dot) is the message.
          this.finish(out, n, chunk.subarray(i + 1), done);
          return;
        }
        // '.' then a bare CR: the line has other characters, so the dot is a stuffing dot like any other
        // (RFC 5321 4.5.2) and is dropped; the CR is kept as the bare CR it is.
        flags.smuggling = true;
        flags.bareCr++;
        out[n++] = CR;
        before = Brk.Bare;
      } else if (st === St.BareDot) {
        st = St.Normal;
        if (b === CR || b === LF) flags.smuggling = true;
        before = Brk.None;
      }
      brk = Brk.None;
      if (b === CR) {
        out[n++] = CR;
        pendingCr = true;
        continue;
      }
      if (b === LF) {
        out[n++] = LF;
        flags.bareLf++;
        brk = Brk.Bare;
        continue;
      }
      if (b === DOT) {
        if (before === Brk.Clean) {
          st = St.Dot;
          continue;
        }
        if (before === Brk.Bare) st = St.BareDot;
      } else if (b === 0) flags.nul = true;
      else if (b >= 0x80) flags.eightBit = true;
      out[n++] = b;
    }
    this.st = st;
    this.brk = brk;
    this.pendingCr = pendingCr;
    this.emitData(stream, out, n, done);
  }

  private emitData(stream: DataStream, out: Buffer, n: number, done: (err?: Error) => void): void {
    const self = this as unknown as Internals;
    if (n === 0) return done();
    const room = self._maxBytes - self.dataBytes;
    self._countDataBytes(n);
    // Over the limit: keep reading to the terminator but never pass on more than the limit (the reply is 552).
    if (room <= 0 || !stream.writable) return done();
    if (stream.write(out.subarray(0, Math.min(n, room))) || stream.destroyed) return done();
    const onDrain = () => {
      stream.removeListener('drain', onDrain);
      stream.removeListener('close', onDrain);
      done();
    };
    stream.once('drain', onDrain);
    stream.once('close', onDrain);
  }

  private finish(out: Buffer, n: number, remainder: Buffer, done: (err?: Error) => void): void {
    const self = this as unknown as Internals;
    const room = self._maxBytes - self.dataBytes;
    if (n) self._countDataBytes(n);
    const tail = n && room > 0 ? out.subarray(0, Math.min(n, room)) : false;
    this.st = St.Normal;
    this.brk = Brk.Clean;
    this.pendingCr = false;
    self._endDataMode(tail, remainder, done);
  }
}
