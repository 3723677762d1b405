// Each gateway's in-line view of the clusters: a mirror of the analyzer's similarity index over the last
// outbreak.mirror_window_min, read from its rows in the store. At end of DATA it answers which clusters a new
// message joins, whether a cluster policy (an outbreak, an admin's verdict) applies, whether this copy makes its
// cluster meet the outbreak rule before the analyzer has said so, and whether the cluster is too young to judge.
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { DB } from '../store/schema.ts';
import type { Logger } from '../core/log.ts';
import type { LivePolicy, PolicyTable } from '../policy/live.ts';
import type { Fingerprint } from './fingerprint.ts';
import { SimilarityIndex, indexOptionsOf, type ClusterStats, type EntryFacts, type Match } from './index.ts';
import { factsSchema, fingerprintSchema } from './store.ts';
import { outbreakRule, withMember, type RuleVerdict } from './rule.ts';

export interface WatchVerdict {
  /** Clusters of the recent messages this one is like (usually one). */
  clusters: number[];
  matches: Match[];
  /** The largest of them, with its counts before this message. */
  best?: ClusterStats;
  /** Cluster policies in force on those clusters, allow (safe) included. */
  policies: LivePolicy[];
  /** An admin said one of its clusters is safe. */
  safe: boolean;
  /** This copy makes its cluster meet the outbreak rule (the analyzer will declare it in a moment). */
  tips?: RuleVerdict & { cluster: number };
  /** No recent message is like it, or its cluster is younger than outbreak.hold_s. */
  young: boolean;
}

/**
 * Rows written within this long before the newest one read are read again (by id only): the analyzer writes rows
 * a step after their messages arrived, so one can land with a time just before the newest already read.
 */
const SLACK_MS = 10_000;
/**
 * Between those full reads, every FULL_EVERY_MS, the timer's reads look back only this far: reading every id of
 * the last ten seconds four times a second costs the event loop a few milliseconds each time at a few hundred
 * messages a second, and a row later than this is still found by the next full read.
 */
const SHORT_SLACK_MS = 1_000;
const FULL_EVERY_MS = 2_000;
const CHUNK = 500;
/**
 * How long this gateway remembers the messages it took itself, until the mirror has them from the analyzer (about
 * a second later): the copies of a campaign arriving back to back are then counted at once.
 */
const OWN_MS = 60_000;

export class ClusterWatch {
  readonly index: SimilarityIndex;
  /** This process's own recent messages, not yet in the mirror. */
  private readonly own: SimilarityIndex;
  private newest = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<unknown> | null = null;
  private lastFull = 0;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly config: Config,
    private readonly log?: Logger,
    /** The config with the outbreak rule as last changed in the center (config/overrides.ts); the loaded one if none. */
    private readonly live: () => Config = () => config,
  ) {
    this.index = new SimilarityIndex({ ...indexOptionsOf(config.similarity), windowMs: config.outbreak.mirror_window_min * 60_000 });
    this.own = new SimilarityIndex({ ...indexOptionsOf(config.similarity), windowMs: OWN_MS });
  }

  /** A message this process just took or refused (the analyzer will index it from its event). */
  note(id: string, fp: Fingerprint, facts: EntryFacts, now = Date.now()): void {
    if (!this.own.has(id) && !this.index.has(id)) this.own.insert(id, fp, now, facts);
  }

  /** Reads the window, then follows the analyzer's new rows every outbreak.mirror_poll_ms. */
  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => this.kick(), this.config.outbreak.mirror_poll_ms);
    this.timer.unref();
  }

  /** Reads the new rows now (the analyzer announced them), unless a read is under way. */
  kick(): void {
    const now = Date.now();
    const full = now - this.lastFull >= FULL_EVERY_MS;
    this.polling ??= this.poll(now, full)
      .catch((err: Error) => this.log?.warn({ err: err.message }, 'cluster mirror read failed; trying again'))
      .finally(() => (this.polling = null));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Reads rows not yet mirrored: their ids first, then the full rows of those missing. `full`: looks back
   * SLACK_MS behind the newest row read, else SHORT_SLACK_MS.
   */
  async poll(now = Date.now(), full = true): Promise<number> {
    if (full) this.lastFull = now;
    const from = Math.max(now - this.index.options.windowMs, this.newest - (full ? SLACK_MS : SHORT_SLACK_MS));
    const ids = await this.db.selectFrom('similarity_entries').select(['id', 'ts']).where('ts', '>=', from).orderBy('ts').execute();
    const missing = ids.filter((r) => !this.index.has(r.id)).map((r) => r.id);
    let added = 0;
    for (let i = 0; i < missing.length; i += CHUNK) {
      const rows = await this.db
        .selectFrom('similarity_entries')
        .selectAll()
        .where('id', 'in', missing.slice(i, i + CHUNK))
        .orderBy('ts')
        .execute();
      for (const row of rows) {
        const fp = fingerprintSchema.safeParse(safeJson(row.fingerprint));
        const facts = factsSchema.safeParse(safeJson(row.facts));
        if (!fp.success || !facts.success) continue;
        const ts = Number(row.ts);
        this.index.adopt(row.id, fp.data as Fingerprint, ts, facts.data, Number(row.cluster));
        // The mirror counts it from here: this process's own copy of it is no longer needed.
        this.own.remove(row.id);
        if (ts > this.newest) this.newest = ts;
        added++;
      }
    }
    this.index.evict(now);
    return added;
  }

  /** The outbreak section in force now: its rule keys may have been changed in the center. */
  rule(): Config['outbreak'] {
    return this.live().outbreak;
  }

  /** What the clusters say about a new message, before it is indexed (the analyzer indexes it from its event). */
  check(fp: Fingerprint, m: { ip: string; recipients: number; suspicious: boolean }, policies: PolicyTable, now = Date.now()): WatchVerdict {
    const cfg = this.rule();
    const matches = this.index.query(fp, now);
    // This process's own copies that the mirror does not have yet count as members of the cluster they are like.
    const mine = this.own
      .query(fp, now)
      .filter((x) => !this.index.has(x.id))
      .map((x) => this.own.entry(x.id))
      .filter((x): x is { ts: number; facts: EntryFacts } => x !== undefined && !x.facts.outbound);
    const clusters = [...new Set(matches.map((x) => x.cluster))];
    const policiesOn = clusters.flatMap((c) => policies.forCluster(c, now));
    const safe = policiesOn.some((p) => p.action === 'allow');
    let best: ClusterStats | undefined;
    for (const c of clusters) {
      const s = this.index.cluster(c);
      if (s && (!best || s.members > best.members)) best = s;
    }
    const verdict: WatchVerdict = { clusters, matches, policies: policiesOn, safe, young: !best && !mine.length };
    if (best) verdict.best = best;
    const firstSeen = Math.min(best?.firstSeen ?? now, ...mine.map((x) => x.ts));
    if (cfg.hold_s > 0 && now - firstSeen < cfg.hold_s * 1000) verdict.young = true;
    if ((best || mine.length) && m.suspicious && !safe) {
      let next: ClusterStats = best ?? { id: 0, members: 0, ips: 0, senderDomains: 0, recipients: 0, firstSeen, lastSeen: now, suspicious: 0, suspiciousShare: 0, outbound: 0 };
      const ips = new Set<string>();
      const has = (ip: string) => ips.has(ip) || (best !== undefined && this.index.clusterHasIp(best.id, ip));
      for (const x of [...mine.map((y) => ({ ...y.facts, suspicious: y.facts.suspicious })), { ip: m.ip, recipients: m.recipients, suspicious: true }]) {
        next = withMember(next, { newIp: !has(x.ip), recipients: x.recipients, suspicious: x.suspicious }, now);
        ips.add(x.ip);
      }
      next = { ...next, firstSeen };
      const recent = (best ? this.index.membersSince(best.id, now - cfg.burst_min * 60_000) : 0) + mine.filter((x) => x.ts >= now - cfg.burst_min * 60_000).length + 1;
      const r = outbreakRule(next, recent, cfg, now);
      if (r.outbreak) verdict.tips = { ...r, cluster: best?.id ?? 0 };
    }
    return verdict;
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
