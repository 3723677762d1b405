// The read side of the clusters, for `postern clusters` and the API: the summaries the outbreak detector keeps (table
// clusters) with the verdict their policies give, one cluster's members and what was done to each copy, and an
// admin's mark (a policy on the cluster, which the gateway and the detector read like any other).
import type { Kysely, Selectable } from 'kysely';
import type { ClustersTable, DB } from '../store/schema.ts';
import { addPolicy, listPolicies, type PolicyRow } from '../policy/admin.ts';

export const CLUSTER_STATES = ['watching', 'outbreak', 'safe'] as const;
export type ClusterState = (typeof CLUSTER_STATES)[number];

/** 'outbreak': the detector's policy is in force; 'safe' / 'bad': an admin's mark, which overrides it. */
export type ClusterVerdict = 'outbreak' | 'safe' | 'bad';

export interface ClusterSummary {
  id: number;
  first_seen: number;
  last_seen: number;
  members: number;
  ips: number;
  sender_domains: number;
  recipients: number;
  suspicious: number;
  state: string;
  declared_at: number | null;
  declared_by: string | null;
  subject: string | null;
  updated_at: number;
  verdict: ClusterVerdict | null;
  /** The policy behind the verdict. */
  policy: string | null;
}

/** An event about the cluster: its declaration, an admin's mark, and the retroactive action on its copies. */
export interface ClusterEvent {
  id: number;
  ts: number;
  type: string;
  /** Queue id of the copy it is about, if any. */
  msg_id: string | null;
  data: Record<string, unknown>;
}

export interface MemberRecipient {
  rcpt: string;
  action: string;
  /** queued, delivered, deferred, quarantined, pulled_back, … */
  status: string;
  route: string;
  /** The last retroactive action on this copy (retro.quarantined, retro.pulled_back, retro.failed), if any. */
  retro: ClusterEvent | null;
}

export interface ClusterMember {
  /** Queue id. */
  id: string;
  ts: number;
  ip: string | null;
  sender: string | null;
  subject: string | null;
  message_id: string | null;
  suspicious: boolean;
  recipients: MemberRecipient[];
  /** External recipients an outbound copy of it reached (retro.forwarded). */
  forwarded: string[];
}

export interface ClusterDetail {
  cluster: ClusterSummary;
  /** Every policy on the cluster, expired ones included, newest first. */
  policies: PolicyRow[];
  /** Oldest first, at most `limit`; membersTotal says how many there are. */
  members: ClusterMember[];
  membersTotal: number;
  events: ClusterEvent[];
  /** External recipients outbound copies reached, over all members. */
  forwardedTo: string[];
}

/** Event types that tell a cluster's story; each carries `cluster` in its data. */
export const CLUSTER_EVENT_TYPES = [
  'similarity.held',
  'outbreak.declared',
  'cluster.marked',
  'retro.quarantined',
  'retro.pulled_back',
  'retro.failed',
  'retro.forwarded',
  'retro.notified',
  'outbound.outbreak_refused',
] as const;

const RETRO_PER_COPY = new Set(['retro.quarantined', 'retro.pulled_back', 'retro.failed']);
const MAX_LIST = 1000;
const MAX_EVENTS = 10_000;
/** Rows per `in (…)` list: far under SQLite's and PostgreSQL's parameter limits. */
const CHUNK = 500;

/** Unknown cluster, or a mark that cannot be: the CLI exits 1 or 64, the API answers 404 or 400. */
export class ClusterError extends Error {
  override name = 'ClusterError';
  constructor(
    readonly code: 'not_found' | 'bad_request',
    message: string,
  ) {
    super(message);
  }
}

type PolicyBrief = { id: string; action: string; source: string; created_at: number; expires_at: number | null; pinned: number | boolean };

const active = (p: Pick<PolicyBrief, 'expires_at' | 'pinned'>, now: number) => Boolean(p.pinned) || p.expires_at === null || Number(p.expires_at) > now;

/** The verdict of a cluster's active policies, newest first: an admin's mark wins over the detector's declaration. */
function verdictOf(policies: PolicyBrief[], now: number): { verdict: ClusterVerdict | null; policy: string | null } {
  const live = policies.filter((p) => active(p, now));
  const admin = live.find((p) => p.source === 'admin');
  if (admin) return { verdict: admin.action === 'allow' ? 'safe' : 'bad', policy: admin.id };
  const rule = live.find((p) => p.action !== 'allow');
  return rule ? { verdict: 'outbreak', policy: rule.id } : { verdict: null, policy: null };
}

function summary(r: Selectable<ClustersTable>, policies: PolicyBrief[], now: number): ClusterSummary {
  const n = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: Number(r.id),
    first_seen: Number(r.first_seen),
    last_seen: Number(r.last_seen),
    members: Number(r.members),
    ips: Number(r.ips),
    sender_domains: Number(r.sender_domains),
    recipients: Number(r.recipients),
    suspicious: Number(r.suspicious),
    state: r.state,
    declared_at: n(r.declared_at),
    declared_by: r.declared_by,
    subject: r.subject,
    updated_at: Number(r.updated_at),
    ...verdictOf(policies, now),
  };
}

const chunks = <T>(xs: T[]): T[][] => Array.from({ length: Math.ceil(xs.length / CHUNK) }, (_, i) => xs.slice(i * CHUNK, (i + 1) * CHUNK));

async function clusterPolicies(db: Kysely<DB>, ids: number[]): Promise<Map<number, PolicyBrief[]>> {
  const by = new Map<number, PolicyBrief[]>();
  for (const part of chunks(ids.map(String))) {
    const rows = await db
      .selectFrom('policies')
      .select(['id', 'target', 'action', 'source', 'created_at', 'expires_at', 'pinned'])
      .where('target_kind', '=', 'cluster')
      .where('target', 'in', part)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    for (const r of rows) {
      const k = Number(r.target);
      by.set(k, [...(by.get(k) ?? []), { ...r, created_at: Number(r.created_at), expires_at: r.expires_at === null ? null : Number(r.expires_at) }]);
    }
  }
  return by;
}

/** Clusters newest activity first, with their verdicts. `since`: last seen at or after (ms). */
export async function listClusters(
  db: Kysely<DB>,
  opts: { state?: string; since?: number; limit?: number } = {},
  now = Date.now(),
): Promise<ClusterSummary[]> {
  let q = db.selectFrom('clusters').selectAll();
  if (opts.state) q = q.where('state', '=', opts.state);
  if (opts.since !== undefined) q = q.where('last_seen', '>=', opts.since);
  const rows = await q
    .orderBy('last_seen', 'desc')
    .orderBy('id', 'desc')
    .limit(Math.min(opts.limit ?? 100, MAX_LIST))
    .execute();
  const policies = await clusterPolicies(db, rows.map((r) => Number(r.id)));
  return rows.map((r) => summary(r, policies.get(Number(r.id)) ?? [], now));
}

interface Facts {
  ip?: string;
  senderDomain?: string;
  recipients?: number;
  suspicious?: boolean;
}

function parseFacts(json: string): Facts {
  try {
    return JSON.parse(json) as Facts;
  } catch {
    return {};
  }
}

/**
 * The cluster's row: from the clusters table, or, for a cluster the detector has not summarised yet, counted from its
 * entries. undefined when neither knows it.
 */
async function clusterRow(db: Kysely<DB>, id: number): Promise<Selectable<ClustersTable> | undefined> {
  const row = await db.selectFrom('clusters').selectAll().where('id', '=', id).executeTakeFirst();
  if (row) return row;
  const entries = await db
    .selectFrom('similarity_entries as e')
    .leftJoin('messages as m', 'm.id', 'e.id')
    .select(['e.ts', 'e.facts', 'm.subject'])
    .where('e.cluster', '=', id)
    .orderBy('e.ts')
    .execute();
  if (!entries.length) return undefined;
  const facts = entries.map((e) => parseFacts(e.facts));
  const ts = entries.map((e) => Number(e.ts));
  return {
    id,
    first_seen: ts[0],
    last_seen: ts[ts.length - 1],
    members: entries.length,
    ips: new Set(facts.map((f) => f.ip)).size,
    sender_domains: new Set(facts.map((f) => f.senderDomain)).size,
    recipients: facts.reduce((a, f) => a + (f.recipients ?? 0), 0),
    suspicious: facts.filter((f) => f.suspicious).length,
    state: 'watching',
    declared_at: null,
    declared_by: null,
    subject: entries[0].subject,
    updated_at: ts[ts.length - 1],
  };
}

/** Whether an event's data names this cluster (written as a number, or as the policy target's decimal string). */
const names = (data: Record<string, unknown>, id: number) => data.cluster === id || data.cluster === String(id);

async function clusterEvents(db: Kysely<DB>, id: number, since: number): Promise<ClusterEvent[]> {
  // LIKE narrows the rows on both stores without their JSON operators; the exact test is names() below.
  const rows = await db
    .selectFrom('events')
    .select(['id', 'ts', 'type', 'msg_id', 'data'])
    .where('type', 'in', [...CLUSTER_EVENT_TYPES])
    .where('ts', '>=', since)
    .where((eb) => eb.or([eb('data', 'like', `%"cluster":${id}%`), eb('data', 'like', `%"cluster":"${id}"%`)]))
    .orderBy('id')
    .limit(MAX_EVENTS)
    .execute();
  const out: ClusterEvent[] = [];
  for (const r of rows) {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(r.data) as Record<string, unknown>;
    } catch {
      continue;
    }
    // The copy's queue id is the event's msg_id column; older writers put it in the data.
    const msg = r.msg_id ?? (typeof data.msg_id === 'string' ? data.msg_id : null);
    if (names(data, id)) out.push({ id: Number(r.id), ts: Number(r.ts), type: r.type, msg_id: msg, data });
  }
  return out;
}

/** One cluster with its policies, members (oldest first, at most `limit`), events and where its copies went. */
export async function showCluster(db: Kysely<DB>, id: number, opts: { limit?: number } = {}, now = Date.now()): Promise<ClusterDetail | undefined> {
  const row = await clusterRow(db, id);
  if (!row) return undefined;
  const policies = (await listPolicies(db, { all: true, target: String(id) }, now)).filter((p) => p.target_kind === 'cluster');
  const cluster = summary(row, policies, now);

  const entries = await db
    .selectFrom('similarity_entries as e')
    .leftJoin('messages as m', 'm.id', 'e.id')
    .select(['e.id', 'e.ts', 'e.facts', 'm.client_ip', 'm.mail_from', 'm.subject', 'm.message_id'])
    .where('e.cluster', '=', id)
    .orderBy('e.ts')
    .orderBy('e.id')
    .limit(Math.min(opts.limit ?? MAX_LIST, MAX_LIST))
    .execute();
  const total = await db
    .selectFrom('similarity_entries')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('cluster', '=', id)
    .executeTakeFirstOrThrow();

  const rcpts = new Map<string, { rcpt: string; action: string; status: string; route: string }[]>();
  for (const part of chunks(entries.map((e) => e.id))) {
    const rows = await db.selectFrom('recipients').select(['msg_id', 'rcpt', 'action', 'status', 'route']).where('msg_id', 'in', part).orderBy('rcpt').execute();
    for (const { msg_id, ...r } of rows) rcpts.set(msg_id, [...(rcpts.get(msg_id) ?? []), r]);
  }

  // Events from a minute before the first member: clocks of several nodes differ a little.
  const events = await clusterEvents(db, id, cluster.first_seen - 60_000);
  const lastRetro = new Map<string, ClusterEvent>();
  const forwarded = new Map<string, Set<string>>();
  for (const e of events) {
    const msg = e.msg_id;
    if (!msg) continue;
    if (RETRO_PER_COPY.has(e.type) && typeof e.data.rcpt === 'string') lastRetro.set(`${msg}\n${e.data.rcpt.toLowerCase()}`, e);
    if (e.type === 'retro.forwarded' && Array.isArray(e.data.to)) {
      const set = forwarded.get(msg) ?? new Set<string>();
      for (const to of e.data.to) if (typeof to === 'string') set.add(to.toLowerCase());
      forwarded.set(msg, set);
    }
  }

  const members: ClusterMember[] = entries.map((e) => {
    const f = parseFacts(e.facts);
    return {
      id: e.id,
      ts: Number(e.ts),
      ip: e.client_ip ?? f.ip ?? null,
      sender: e.mail_from ?? null,
      subject: e.subject ?? null,
      message_id: e.message_id ?? null,
      suspicious: f.suspicious === true,
      recipients: (rcpts.get(e.id) ?? []).map((r) => ({ ...r, retro: lastRetro.get(`${e.id}\n${r.rcpt.toLowerCase()}`) ?? null })),
      forwarded: [...(forwarded.get(e.id) ?? [])].sort(),
    };
  });
  const forwardedTo = [...new Set([...forwarded.values()].flatMap((s) => [...s]))].sort();
  return { cluster, policies, members, membersTotal: Number(total.n), events, forwardedTo };
}

/**
 * An admin's verdict on a cluster: 'safe' is an allow policy, 'bad' a quarantine (or block) policy, both from source
 * 'admin' and without expiry. It replaces the admin's earlier marks of the cluster. 'safe' also lifts (expires, so
 * that it still explains past decisions) the detector's declarations in force: the gateway applies a cluster's
 * quarantine or block whatever allow stands beside it. Emits nothing: the caller emits cluster.marked.
 */
export async function markCluster(
  db: Kysely<DB>,
  id: number,
  verdict: 'safe' | 'bad',
  opts: { by: string; reason?: string; action?: 'quarantine' | 'block' },
  now = Date.now(),
): Promise<PolicyRow> {
  if (verdict === 'safe' && opts.action !== undefined) throw new ClusterError('bad_request', `action ${opts.action} applies only to a bad verdict`);
  const row = await clusterRow(db, id);
  if (!row) throw new ClusterError('not_found', `no cluster ${id}`);
  const target = String(id);
  return db.transaction().execute(async (trx) => {
    await trx.deleteFrom('policies').where('target_kind', '=', 'cluster').where('target', '=', target).where('source', '=', 'admin').execute();
    let lifted: string[] = [];
    if (verdict === 'safe') {
      const declared = await trx.selectFrom('policies').select(['id', 'action', 'expires_at', 'pinned']).where('target_kind', '=', 'cluster').where('target', '=', target).execute();
      lifted = declared.filter((p) => p.action !== 'allow' && active(p, now)).map((p) => p.id);
      if (lifted.length) await trx.updateTable('policies').set({ expires_at: now, pinned: 0 }).where('id', 'in', lifted).execute();
    }
    return addPolicy(
      trx,
      {
        target_kind: 'cluster',
        target,
        action: verdict === 'safe' ? 'allow' : (opts.action ?? 'quarantine'),
        reason: opts.reason?.trim() || `marked ${verdict} by ${opts.by}`,
        evidence: {
          verdict,
          by: opts.by,
          cluster: { members: Number(row.members), ips: Number(row.ips), sender_domains: Number(row.sender_domains), recipients: Number(row.recipients), suspicious: Number(row.suspicious), state: row.state },
          ...(lifted.length && { lifted }),
        },
        ttl_s: null,
        source: 'admin',
      },
      now,
    );
  });
}
