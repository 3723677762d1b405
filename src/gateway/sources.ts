// What the gateway remembers about each client address between connections: for the greeting pause
// and the per-address connection cap. In-process; an address this process has not seen yet starts from the data
// matrix's durable record of it (source_stats), read once.
import { cidrContains } from '../policy/match.ts';

export type SourceClass = 'trusted' | 'known_good' | 'unknown' | 'suspicious';

interface Record_ {
  accepted: number;
  refused: number;
  protocolErrors: number;
  lastSeen: number;
}

const MAX_ENTRIES = 100_000;

export class SourceBook {
  private book = new Map<string, Record_>();
  private open = new Map<string, number>();

  constructor(private readonly trusted: readonly string[]) {}

  isTrusted(ip: string): boolean {
    return this.trusted.some((c) => cidrContains(c, ip));
  }

  classify(ip: string): SourceClass {
    if (this.isTrusted(ip)) return 'trusted';
    const r = this.book.get(ip);
    if (!r) return 'unknown';
    if (r.refused + r.protocolErrors >= 3 && r.refused + r.protocolErrors > r.accepted) return 'suspicious';
    if (r.accepted > 0 && r.refused === 0 && r.protocolErrors === 0) return 'known_good';
    return 'unknown';
  }

  private rec(ip: string): Record_ {
    let r = this.book.get(ip);
    if (!r) {
      if (this.book.size >= MAX_ENTRIES) {
        const oldest = this.book.keys().next().value;
        if (oldest !== undefined) this.book.delete(oldest);
      }
      r = { accepted: 0, refused: 0, protocolErrors: 0, lastSeen: Date.now() };
      this.book.set(ip, r);
    }
    r.lastSeen = Date.now();
    return r;
  }

  /** Whether the book holds a record of ip (from this process's connections or seeded from the data matrix). */
  knows(ip: string): boolean {
    return this.book.has(ip);
  }

  /** Starts ip's record from what the data matrix remembers of it (after a restart, or another node's traffic). */
  seed(ip: string, h: { accepted: number; refused: number; protocolErrors: number }): void {
    if (this.book.has(ip)) return;
    const r = this.rec(ip);
    r.accepted = h.accepted;
    r.refused = h.refused;
    r.protocolErrors = h.protocolErrors;
  }

  accepted(ip: string): void {
    this.rec(ip).accepted++;
  }

  refused(ip: string): void {
    this.rec(ip).refused++;
  }

  protocolError(ip: string): void {
    this.rec(ip).protocolErrors++;
  }

  /** Counts an open connection; false when the address is at its cap. */
  connect(ip: string, cap: number): boolean {
    const n = this.open.get(ip) ?? 0;
    if (n >= cap) return false;
    this.open.set(ip, n + 1);
    return true;
  }

  disconnect(ip: string): void {
    const n = (this.open.get(ip) ?? 1) - 1;
    if (n <= 0) this.open.delete(ip);
    else this.open.set(ip, n);
  }
}
