// The clusters of the similarity index: ids that grow with time, union when a message bridges two, and per-cluster counts
// that go up on insert and down on eviction, so the stats always describe the members still in the window.

/** What the index is told about each message besides its fingerprint. */
export interface EntryFacts {
  /** Client address of the connection that brought it. */
  ip: string;
  /** Registrable domain of the envelope sender ('' for the null sender). */
  senderDomain: string;
  /** Recipients of the message. */
  recipients: number;
  /** The characteristic checks found it suspicious (but not conclusively bad). */
  suspicious: boolean;
}

/** A cluster as the outbreak rule will read it. */
export interface ClusterStats {
  id: number;
  /** Members in the window. */
  members: number;
  /** Distinct client addresses among them. */
  ips: number;
  /** Distinct envelope sender domains among them. */
  senderDomains: number;
  /** Recipients over all members (a message's recipients are distinct; across messages they are counted again). */
  recipients: number;
  /** Earliest member ever seen (kept when that member leaves the window: it is the campaign's age). */
  firstSeen: number;
  /** Latest member seen. */
  lastSeen: number;
  /** Members flagged suspicious, and their share. */
  suspicious: number;
  suspiciousShare: number;
}

interface Cluster {
  id: number;
  members: number;
  ips: Map<string, number>;
  domains: Map<string, number>;
  recipients: number;
  suspicious: number;
  firstSeen: number;
  lastSeen: number;
  /** Ids merged into this one, forgotten with it. */
  aliases: number[];
}

const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

export class Clusters {
  private readonly live = new Map<number, Cluster>();
  /** Merged id → the id it was merged into (union-find parent). */
  private readonly parent = new Map<number, number>();
  private next = 1;

  /** The live id a (possibly merged) id now stands for, or undefined once the cluster has left the window. */
  find(id: number): number | undefined {
    let root = id;
    while (this.parent.has(root)) root = this.parent.get(root) as number;
    if (root !== id) this.parent.set(id, root);
    return this.live.has(root) ? root : undefined;
  }

  /**
   * A new empty cluster; `id` when restoring a persisted one. A new id is at least the creation time in ms × 1024,
   * so ids grow with time and a restart never hands out again the id of a cluster that left the window before it.
   */
  create(ts: number, id = Math.max(this.next, Math.floor(ts) * 1024)): number {
    if (this.live.has(id)) return id;
    this.live.set(id, { id, members: 0, ips: new Map(), domains: new Map(), recipients: 0, suspicious: 0, firstSeen: ts, lastSeen: ts, aliases: [] });
    if (id >= this.next) this.next = id + 1;
    return id;
  }

  add(id: number, ts: number, f: EntryFacts): void {
    const c = this.live.get(id) as Cluster;
    c.members++;
    inc(c.ips, f.ip);
    inc(c.domains, f.senderDomain);
    c.recipients += f.recipients;
    if (f.suspicious) c.suspicious++;
    if (ts < c.firstSeen) c.firstSeen = ts;
    if (ts > c.lastSeen) c.lastSeen = ts;
  }

  /** Takes one member out; a cluster left without members is forgotten with its aliases. */
  remove(id: number, f: EntryFacts): void {
    const root = this.find(id);
    if (root === undefined) return;
    const c = this.live.get(root) as Cluster;
    c.members--;
    dec(c.ips, f.ip);
    dec(c.domains, f.senderDomain);
    c.recipients -= f.recipients;
    if (f.suspicious) c.suspicious--;
    if (c.members > 0) return;
    this.live.delete(root);
    for (const a of c.aliases) this.parent.delete(a);
  }

  /**
   * Merges live clusters into one: the oldest id survives, so the id a policy or an admin already refers to stays.
   * Returns the surviving id and the ids that were merged into it.
   */
  union(ids: Iterable<number>): { id: number; merged: number[] } {
    const roots = [...new Set(ids)].sort((a, b) => a - b);
    const [keep, ...rest] = roots;
    const k = this.live.get(keep) as Cluster;
    for (const id of rest) {
      const c = this.live.get(id) as Cluster;
      this.live.delete(id);
      this.parent.set(id, keep);
      k.aliases.push(id, ...c.aliases);
      k.members += c.members;
      for (const [ip, n] of c.ips) k.ips.set(ip, (k.ips.get(ip) ?? 0) + n);
      for (const [d, n] of c.domains) k.domains.set(d, (k.domains.get(d) ?? 0) + n);
      k.recipients += c.recipients;
      k.suspicious += c.suspicious;
      k.firstSeen = Math.min(k.firstSeen, c.firstSeen);
      k.lastSeen = Math.max(k.lastSeen, c.lastSeen);
    }
    return { id: keep, merged: rest };
  }

  stats(id: number): ClusterStats | undefined {
    const root = this.find(id);
    if (root === undefined) return undefined;
    const c = this.live.get(root) as Cluster;
    return {
      id: c.id,
      members: c.members,
      ips: c.ips.size,
      senderDomains: c.domains.size,
      recipients: c.recipients,
      firstSeen: c.firstSeen,
      lastSeen: c.lastSeen,
      suspicious: c.suspicious,
      suspiciousShare: c.members ? c.suspicious / c.members : 0,
    };
  }

  /** Live clusters, largest first. */
  list(): ClusterStats[] {
    return [...this.live.keys()].map((id) => this.stats(id) as ClusterStats).sort((a, b) => b.members - a.members);
  }
}
