// A progress line: rewritten in place on a terminal, a line every few seconds otherwise (logs, CI).
export class Progress {
  private last = 0;
  private readonly tty: boolean;
  private readonly started = performance.now();

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly everyMs = 5_000,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  update(done: number, extra = ''): void {
    const now = performance.now();
    if (now - this.last < (this.tty ? 100 : this.everyMs)) return;
    this.last = now;
    this.write(done, extra);
  }

  done(done: number, extra = ''): void {
    this.write(done, extra);
    if (this.tty) this.out.write('\n');
  }

  private write(done: number, extra: string): void {
    const secs = (performance.now() - this.started) / 1000;
    const rate = secs > 0 ? Math.round(done / secs) : 0;
    let bar = '';
    if (this.total) {
      const w = 24;
      const f = Math.min(w, Math.round((done / this.total) * w));
      bar = `[${'#'.repeat(f)}${'.'.repeat(w - f)}] ${done}/${this.total}`;
    } else bar = String(done);
    const line = `${this.label} ${bar} ${rate}/s${extra ? `  ${extra}` : ''}`;
    if (this.tty) this.out.write(`\r\x1b[2K${line}`);
    else this.out.write(`${line}\n`);
  }
}
