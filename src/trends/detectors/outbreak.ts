// The outbreak detector: puts every analysed message's fingerprint into the similarity index, keeps each cluster's
// counts, and declares a cluster an outbreak when the time-zero rule says so (similarity/rule.ts). The declaration is
// a cluster policy; the gateways hold the cluster's later copies and retro/ goes back for the earlier ones.
//
// The index is the analyzer's: one per deployment (the leading analyzer), so every gateway node and worker sees the
// same clusters with the same ids. Its rows are written to the store at every step; the gateways mirror them.
import type { Kysely } from 'kysely';
import { getDomain } from 'tldts';
import type { Config } from '../../config/schema.ts';
import type { DB } from '../../store/schema.ts';
import type { Logger } from '../../core/log.ts';
import { SimilarityIndex, indexOptionsOf, type EntryFacts, type InsertResult } from '../../similarity/index.ts';
import { SimilarityStore, fingerprintSchema } from '../../similarity/store.ts';
import type { Fingerprint } from '../../similarity/fingerprint.ts';
import { outbreakRule } from '../../similarity/rule.ts';
import type { Detector, DetectorContext, Finding, MatrixEvent } from '../detector.ts';
import { plainIp, str } from '../detector.ts';

interface Pending {
  id: string;
  fp: Fingerprint;
  ts: number;
  facts: EntryFacts;
  result: InsertResult;
}

/** How often the rows and cluster summaries past the window are deleted. */
const PRUNE_MS = 60_000;

/** The registrable domain of an envelope sender ('' for the null sender). */
export function senderDomainOf(sender: string): string {
  const at = sender.lastIndexOf('@');
  if (at < 0) return '';
  const host = sender.slice(at + 1).toLowerCase();
  return getDomain(host) ?? host;
}

export class OutbreakDetector implements Detector {
  readonly name = 'outbreak';
  readonly types = ['message.accepted', 'smtp.data.rejected', 'outbound.accepted'] as const;
  readonly index: SimilarityIndex;
  private pending: Pending[] = [];
  /** Clusters whose counts changed since the last flush, with a subject for a new summary row. */
  private touched = new Map<number, string | null>();
  private merged: number[] = [];
  /** Clusters declared (by this rule) and not yet left the window. */
  private readonly declared = new Set<number>();
  private prunedAt = 0;
  private store: SimilarityStore | null = null;

  constructor(private readonly config: Config) {
    this.index = new SimilarityIndex(indexOptionsOf(config.similarity));
  }

  horizonMs(): number {
    return 0;
  }

  async load(db: Kysely<DB>, now: number, log: Logger): Promise<void> {
    this.store = new SimilarityStore(db, log);
    const r = await this.store.load(this.index, now);
    const rows = await db.selectFrom('clusters').select('id').where('state', '=', 'outbreak').execute();
    for (const row of rows) {
      const live = this.index.clusterOf(String(row.id));
      if (this.index.cluster(Number(row.id))) this.declared.add(Number(row.id));
      else if (live !== undefined) this.declared.add(live);
    }
    log.info({ entries: r.loaded, skipped: r.skipped, clusters: this.index.listClusters().length, outbreaks: this.declared.size }, 'similarity index loaded');
  }

  observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined {
    const cfg = ctx.config.outbreak;
    if (!cfg.enabled || !e.msg_id || this.index.has(e.msg_id)) return;
    const parsed = fingerprintSchema.safeParse(e.data.fp);
    if (!parsed.success) return;
    if (e.ts < Date.now() - this.index.options.windowMs) return;
    const fp = parsed.data as Fingerprint;
    const rcpts = Array.isArray(e.data.recipients) ? e.data.recipients.length : Array.isArray(e.data.rcpts) ? e.data.rcpts.length : 0;
    const outbound = e.type === 'outbound.accepted';
    const facts: EntryFacts = {
      ip: e.ip ? plainIp(e.ip) : '',
      senderDomain: senderDomainOf(str(e.data.from) ?? ''),
      recipients: rcpts,
      suspicious: e.data.suspicious === true,
      ...(outbound && { outbound: true }),
    };
    const result = this.index.insert(e.msg_id, fp, e.ts, facts);
    this.pending.push({ id: e.msg_id, fp, ts: e.ts, facts, result });
    if (!this.touched.has(result.cluster)) this.touched.set(result.cluster, str(e.data.subject) ?? null);
    if (result.merged.length) this.merged.push(...result.merged);
    // Our own users' outgoing copies are traced with their cluster, never counted towards its spread.
    if (outbound && !result.merged.some((m) => this.declared.has(m))) return;
    const cluster = result.cluster;
    const stats = this.index.cluster(cluster);
    if (!stats || stats.members < 2) return;
    const wasDeclared = this.declared.has(cluster) || result.merged.some((m) => this.declared.has(m));
    for (const m of result.merged) this.declared.delete(m);
    const recent = this.index.membersSince(cluster, e.ts - cfg.burst_min * 60_000);
    const verdict = outbreakRule(stats, recent, cfg, e.ts);
    if (!wasDeclared && !verdict.outbreak) return;
    this.declared.add(cluster);
    // Every later member refreshes the policy (the analyzer writes a repeat at most every 30 s), so it lasts
    // policy_ttl_h after the campaign's last copy.
    return [
      {
        detector: this.name,
        policy: {
          target_kind: 'cluster',
          target: String(cluster),
          action: cfg.action,
          reason: verdict.reason,
          ttl_s: cfg.policy_ttl_h * 3600,
          source: 'analyzer:outbreak',
          evidence: { ...verdict.evidence, first_seen: stats.firstSeen, last_member: e.msg_id, last_event_id: e.id, merged: result.merged },
        },
      },
    ];
  }

  /** Writes the new rows (merges included) and the changed clusters' summaries; prunes the window now and then. */
  async flush(db: Kysely<DB>, now: number): Promise<number> {
    const store = (this.store ??= new SimilarityStore(db));
    const written = this.pending.length;
    if (this.pending.length || this.touched.size) {
      const pending = this.pending;
      const touched = this.touched;
      const merged = this.merged;
      await db.transaction().execute(async (tx) => {
        await store.recordMany(tx, pending);
        if (merged.length) await tx.deleteFrom('clusters').where('id', 'in', merged).execute();
        for (const [id, subject] of touched) {
          const s = this.index.cluster(id);
          // A cluster merged since it was touched is written under the survivor's id (touched too), not its own.
          if (!s || s.id !== id || (s.members < 2 && !this.declared.has(id))) continue;
          const row = {
            first_seen: s.firstSeen,
            last_seen: s.lastSeen,
            members: s.members,
            ips: s.ips,
            sender_domains: s.senderDomains,
            recipients: s.recipients,
            suspicious: s.suspicious,
            updated_at: now,
          };
          const declared = this.declared.has(id);
          const state = declared ? { state: 'outbreak', declared_by: 'outbreak-rule' } : {};
          await tx
            .insertInto('clusters')
            .values({ id, ...row, state: declared ? 'outbreak' : 'watching', declared_at: declared ? now : null, declared_by: declared ? 'outbreak-rule' : null, subject })
            .onConflict((oc) => oc.column('id').doUpdateSet({ ...row, ...state }))
            .execute();
          // declared_at is the first time the row said 'outbreak'; a row an admin marked keeps its own.
          if (declared) await tx.updateTable('clusters').set({ declared_at: now }).where('id', '=', id).where('declared_at', 'is', null).execute();
        }
      });
      // The analyzer runs observe and flush one at a time, so all of it was written; a failed transaction threw
      // above and leaves all of it for the next try.
      this.pending = [];
      this.touched = new Map();
      this.merged = [];
    }
    if (now - this.prunedAt >= PRUNE_MS) {
      this.prunedAt = now;
      const cutoff = now - this.index.options.windowMs;
      this.index.evict(now);
      await store.prune(cutoff);
      await db.deleteFrom('clusters').where('last_seen', '<', cutoff).execute();
      for (const id of this.declared) if (!this.index.cluster(id)) this.declared.delete(id);
    }
    return written;
  }
}
