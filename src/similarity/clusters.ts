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
  /**
   * Mail our own users sent out (the outbound path): it joins its cluster, so a forwarded copy of a campaign is
   * traced with it, but it is not counted in the cluster's figures (it says nothing of the campaign's spread).
   */
  outbound?: boolean;
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
  /** Outbound copies in the cluster (not counted above). */
  outbound: number;
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
  /** Members' arrival times, ascending: how many arrived lately is the outbreak rule's velocity. */
  times: number[];
  outbound: number;
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
    this.live.set(id, { id, members: 0, ips: new Map(), domains: new Map(), recipients: 0, suspicious: 0, firstSeen: ts, lastSeen: ts, aliases: [], times: [], outbound: 0 });
    if (id >= this.next) this.next = id + 1;
    return id;
  }

  add(id: number, ts: number, f: EntryFacts): void {
    const c = this.live.get(id) as Cluster;
    if (f.outbound) {
      c.outbound++;
      return;
    }
    c.members++;
    inc(c.ips, f.ip);
    inc(c.domains, f.senderDomain);
    c.recipients += f.recipients;
    if (f.suspicious) c.suspicious++;
    if (ts < c.firstSeen) c.firstSeen = ts;
    if (ts > c.lastSeen) c.lastSeen = ts;
    insertSorted(c.times, ts);
  }

  /** Takes one member out; a cluster left without members is forgotten with its aliases. */
  remove(id: number, f: EntryFacts, ts?: number): void {
    const root = this.find(id);
    if (root === undefined) return;
    const c = this.live.get(root) as Cluster;
    if (f.outbound) c.outbound--;
    else this.uncount(c, f, ts);
    if (c.members > 0 || c.outbound > 0) return;
    this.live.delete(root);
    for (const a of c.aliases) this.parent.delete(a);
  }

  private uncount(c: Cluster, f: EntryFacts, ts?: number): void {
    c.members--;
    dec(c.ips, f.ip);
    dec(c.domains, f.senderDomain);
    c.recipients -= f.recipients;
    if (f.suspicious) c.suspicious--;
    if (ts !== undefined) {
      const i = c.times.indexOf(ts);
      if (i >= 0) c.times.splice(i, 1);
    }
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
      for (const t of c.times) insertSorted(k.times, t);
      k.outbound += c.outbound;
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
      outbound: c.outbound,
    };
  }

  /** Members of a cluster that arrived at or after `since`. */
  since(id: number, since: number): number {
    const root = this.find(id);
    if (root === undefined) return 0;
    const t = (this.live.get(root) as Cluster).times;
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid] < since) lo = mid + 1;
      else hi = mid;
    }
    return t.length - lo;
  }

  /** Whether a cluster has a member from this client address. */
  hasIp(id: number, ip: string): boolean {
    const root = this.find(id);
    return root !== undefined && (this.live.get(root) as Cluster).ips.has(ip);
  }

  /** Live clusters, largest first. */
  list(): ClusterStats[] {
    return [...this.live.keys()].map((id) => this.stats(id) as ClusterStats).sort((a, b) => b.members - a.members);
  }
}

/** Inserts into an ascending array; arrivals come nearly in order, so the search from the end is short. */
function insertSorted(a: number[], v: number): void {
  let i = a.length;
  while (i > 0 && a[i - 1] > v) i--;
  a.splice(i, 0, v);
}
