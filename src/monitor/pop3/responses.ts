// The server's answers in a logged-in POP3 session, passed to the client unchanged while Postern keeps count of
// where each one ends: a status line, and for RETR, TOP, LIST and UIDL a body ending in a line of one dot (RFC 1939
// §3; dot-stuffed lines such as `..x` and `.\r` are not the end, PO-04). A client may pipeline (RFC 2449), so
// Postern's own answers (an -ERR for a refused command, CAPA) wait in line for the server's answers to the
// commands before them.

type Pending = { own: Buffer } | { multiline: boolean };

/** Where the scan of a body stands: in a line, at a line's start, after `.`, after `.\r` at a line's start. */
const enum Dot {
  InLine,
  LineStart,
  Dot,
  DotCr,
}

export class ResponseStream {
  private readonly queue: Pending[] = [];
  /** Of the first server answer in the queue: the start of its status line (for +OK), and whether its body is being read. */
  private status = '';
  private inBody = false;
  private dot = Dot.LineStart;

  constructor(private readonly out: (b: Buffer) => void) {}

  /** A command went to the server; its answer comes next after those already expected. */
  expect(multiline: boolean): void {
    this.queue.push({ multiline });
  }

  /** Postern's own answer, sent once every answer expected before it has been passed on. */
  inject(b: Buffer): void {
    if (this.queue.length) this.queue.push({ own: b });
    else this.out(b);
  }

  push(d: Buffer): void {
    while (d.length) {
      const head = this.queue[0];
      // Nothing expected: a line the server sends on its own (Dovecot's "-ERR Disconnected for inactivity.").
      if (!head || 'own' in head) {
        this.out(d);
        return;
      }
      if (!this.inBody) {
        const lf = d.indexOf(0x0a);
        if (this.status.length < 3) this.status += d.toString('latin1', 0, Math.min(lf < 0 ? d.length : lf, 3 - this.status.length));
        if (lf < 0) {
          this.out(d);
          return;
        }
        this.out(d.subarray(0, lf + 1));
        d = d.subarray(lf + 1);
        if (head.multiline && this.status.toUpperCase() === '+OK') this.inBody = true;
        else this.complete();
        continue;
      }
      const end = this.bodyEnd(d);
      if (end < 0) {
        this.out(d);
        return;
      }
      this.out(d.subarray(0, end));
      d = d.subarray(end);
      this.complete();
    }
  }

  /** Scans a body for its terminating `.` line; returns the offset after it, -1 if the body goes on. */
  private bodyEnd(d: Buffer): number {
    let i = 0;
    while (i < d.length) {
      switch (this.dot) {
        case Dot.InLine: {
          const lf = d.indexOf(0x0a, i);
          if (lf < 0) return -1;
          i = lf + 1;
          this.dot = Dot.LineStart;
          break;
        }
        case Dot.LineStart:
          this.dot = d[i] === 0x2e ? Dot.Dot : Dot.InLine;
          if (this.dot === Dot.Dot) i++;
          break;
        case Dot.Dot:
          if (d[i] === 0x0a) return i + 1;
          this.dot = d[i] === 0x0d ? Dot.DotCr : Dot.InLine;
          if (this.dot === Dot.DotCr) i++;
          break;
        case Dot.DotCr:
          if (d[i] === 0x0a) return i + 1;
          this.dot = Dot.InLine;
          break;
      }
    }
    return -1;
  }

  /** The head answer is complete: forget it, and send Postern's own answers that were waiting for it. */
  private complete(): void {
    this.queue.shift();
    this.status = '';
    this.inBody = false;
    this.dot = Dot.LineStart;
    while (this.queue.length && 'own' in this.queue[0]) this.out((this.queue.shift() as { own: Buffer }).own);
  }
}
