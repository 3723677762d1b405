// Administration of live policies and source metadata: validation, add, analyzer upsert, pin, extend, lift, list.
import net from 'node:net';
import { domainToASCII } from 'node:url';
import { sql, type Kysely, type Selectable } from 'kysely';
import { z } from 'zod';
import type { DB, PoliciesTable, SourceStatsTable } from '../store/schema.ts';
import { queueId } from '../core/ids.ts';

export type PolicyTargetKind = import('./live.ts').PolicyTargetKind;
export type PolicyAction = import('./live.ts').PolicyAction;

export const TARGET_KINDS = ['ip', 'cidr', 'helo', 'sender', 'domain', 'recipient', 'cluster', 'user'] as const satisfies readonly PolicyTargetKind[];
export const ACTIONS = ['block', 'defer', 'throttle', 'tarpit', 'redirect', 'quarantine', 'allow', 'protect'] as const satisfies readonly PolicyAction[];

export interface PolicyInput {
  target_kind: PolicyTargetKind;
  target: string;
  action: PolicyAction;
  /** throttle: { rate, window_s }; tarpit: { delay_ms }; redirect: { to }; recipient targets: { null_sender } */
  params?: Record<string, unknown>;
  reason: string;
  /** Counts, window, sample events: what the analyzer saw. */
  evidence?: Record<string, unknown>;
  /** null or undefined: no expiry. */
  ttl_s?: number | null;
  /** 'admin' (default) or 'analyzer:<detector>'. */
  source?: string;
  pinned?: boolean;
}

export interface PolicyRow {
  id: string;
  target_kind: PolicyTargetKind;
  target: string;
  action: PolicyAction;
  params: Record<string, unknown>;
  reason: string;
  evidence: Record<string, unknown>;
  created_at: number;
  expires_at: number | null;
  pinned: boolean;
  source: string;
  state: 'active' | 'expired';
}

/** One row of source_stats with its JSON columns parsed, plus two derived figures. */
export interface SourceRow extends Omit<Selectable<SourceStatsTable>, 'score_hist' | 'actions'> {
  score_hist: Record<string, number>;
  actions: Record<string, number>;
  /** unknown_recipients / recipients; 0 with no recipients. */
  unknown_ratio: number;
  /** score_sum / score_n; null with no scored message. */
  score_avg: number | null;
}

const whole = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

// The gateway holds a reply at most 30 s for a tarpit (MAX_TARPIT_MS in gateway/server.ts); more is never applied.
// null_sender: a recipient policy that applies only to bounces (the backscatter detector's).
// for: the recipients a policy is scoped to ("user@domain" or "*@domain"): a user's or a domain's own allow or
// block of a sender, from the quarantine. Without it a policy applies to every recipient.
const scope = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => (s.startsWith('*@') ? isDomain(s.slice(2)) : isAddress(s)), 'must be a mail address or *@domain');
const common = { null_sender: z.boolean().optional(), for: scope.optional() };
const PARAMS: Record<PolicyAction, z.ZodType<Record<string, unknown>>> = {
  throttle: z.strictObject({ ...common, rate: whole(1), window_s: whole(1) }),
  tarpit: z.strictObject({ ...common, delay_ms: whole(1, 30_000).optional() }),
  redirect: z.strictObject({ ...common, to: z.string().refine(isAddress, 'must be a mail address').optional() }),
  block: z.strictObject(common),
  defer: z.strictObject(common),
  quarantine: z.strictObject(common),
  allow: z.strictObject(common),
  // A user's own: it has no recipients to scope to and is never a bounce.
  protect: z.strictObject({}),
};

const inputSchema = z.strictObject({
  target_kind: z.enum(TARGET_KINDS),
  target: z.string().trim().min(1),
  action: z.enum(ACTIONS),
  params: z.record(z.string(), z.unknown()).default({}),
  reason: z.string().trim().min(1),
  evidence: z.record(z.string(), z.unknown()).default({}),
  ttl_s: whole(1).nullable().optional(),
  source: z.string().regex(/^[a-z][a-z0-9_-]*(:[\w.@:-]+)?$/).default('admin'),
  pinned: z.boolean().default(false),
});

/** A policy that cannot be: its message names the field and what is wrong with it. */
export class PolicyInputError extends Error {
  override name = 'PolicyInputError';
}

/** Validates and normalises a policy; throws a PolicyInputError whose message names the field and what is wrong. */
export function validatePolicyInput(p: unknown): PolicyInput {
  try {
    return validate(p);
  } catch (err) {
    throw new PolicyInputError((err as Error).message);
  }
}

function validate(p: unknown): PolicyInput {
  const r = inputSchema.safeParse(p, { reportInput: true });
  if (!r.success) throw new Error(r.error.issues.map((i) => describeIssue(i)).join('; '));
  const v = r.data;
  if (v.action === 'protect' && v.target_kind !== 'user') {
    throw new Error(`action protect guards a mailbox user's logins and needs a user target, not ${v.target_kind} (e.g. policies add user alice@example.com protect)`);
  }
  const target = normaliseTarget(v.target_kind, v.target);
  const params = PARAMS[v.action].safeParse(v.params, { reportInput: true });
  if (!params.success) throw new Error(params.error.issues.map((i) => describeIssue({ ...i, path: ['params', ...i.path] }, `a parameter of action ${v.action}`)).join('; '));
  if (params.data.null_sender !== undefined && v.target_kind !== 'recipient') {
    throw new Error(`params.null_sender applies only to recipient targets, not ${v.target_kind}`);
  }
  if (params.data.for !== undefined && !['sender', 'domain', 'ip', 'cidr', 'helo'].includes(v.target_kind)) {
    throw new Error(`params.for scopes a source's policy to recipients; it does not apply to ${v.target_kind} targets`);
  }
  return { ...v, target, params: params.data };
}

function describeIssue(i: z.core.$ZodIssue, owner = 'a policy field'): string {
  const field = i.path.map(String).join('.') || 'policy';
  if (i.input === undefined && i.code !== 'unrecognized_keys' && i.code !== 'custom') return `${field} is missing`;
  switch (i.code) {
    case 'invalid_type':
      return `${field} must be ${i.expected === 'int' ? 'a whole number' : `a ${i.expected}`}`;
    case 'invalid_value':
      return `${field} ${JSON.stringify(i.input)} is not one of ${i.values.join(', ')}`;
    case 'too_small':
      return i.origin === 'string' ? `${field} must not be empty` : `${field} must be at least ${i.minimum}`;
    case 'too_big':
      return `${field} must be at most ${i.maximum}`;
    case 'unrecognized_keys':
      return i.keys.map((k) => `${field === 'policy' ? k : `${field}.${k}`} is not ${owner}`).join('; ');
    case 'invalid_format':
      return `${field} is malformed (expected "admin" or "<component>:<detail>")`;
    default:
      return `${field} ${i.message}`;
  }
}

/** The canonical form the gateway compares against, or an Error naming the target. */
function normaliseTarget(kind: PolicyTargetKind, raw: string): string {
  const t = raw.trim();
  const bad = (what: string) => new Error(`target "${raw}" is not ${what}`);
  switch (kind) {
    case 'ip': {
      const ip = canonicalIp(t.replace(/^::ffff:(?=\d+\.)/i, ''));
      if (!ip) throw bad('an IP address');
      return ip;
    }
    case 'cidr': {
      const n = network(t);
      if (!n) throw bad('a network (address/prefix length, e.g. 203.0.113.0/24)');
      return n;
    }
    case 'sender': {
      const s = t.toLowerCase();
      if (s.startsWith('*@') ? !isDomain(s.slice(2)) : !isAddress(s)) throw bad('a mail address or *@domain');
      return s;
    }
    case 'domain': {
      const d = t.toLowerCase().replace(/^\*?@/, '').replace(/\.$/, '');
      if (!isDomain(d)) throw bad('a domain');
      return d;
    }
    case 'helo':
    case 'recipient':
      return t.toLowerCase();
    case 'cluster':
      if (!/^[1-9]\d{0,18}$/.test(t) || !Number.isSafeInteger(Number(t))) throw bad('a cluster id (a whole number, as postern clusters list shows it)');
      return t;
    default:
      return t;
  }
}

function canonicalIp(s: string): string | undefined {
  const family = net.isIP(s);
  if (!family) return undefined;
  // Node reports client addresses in this compressed, lower-case form, which the gateway compares as text.
  return new net.SocketAddress({ address: s, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

/** "a.b.c.d/n" or "v6/n" reduced to its base address; a bare address is a host network. */
function network(s: string): string | undefined {
  const [addr, bitsText, extra] = s.split('/');
  if (extra !== undefined || (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText))) return undefined;
  let ip = canonicalIp(addr);
  if (!ip) return undefined;
  let bits = bitsText === undefined ? (net.isIP(ip) === 4 ? 32 : 128) : Number(bitsText);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && bits >= 96) [ip, bits] = [mapped[1], bits - 96];
  const v4 = net.isIP(ip) === 4;
  const width = v4 ? 32 : 128;
  if (bits > width) return undefined;
  const value = v4 ? v4ToBig(ip) : v6ToBig(ip);
  const base = (value >> BigInt(width - bits)) << BigInt(width - bits);
  return `${v4 ? bigToV4(base) : bigToV6(base)}/${bits}`;
}

const v4ToBig = (ip: string) => ip.split('.').reduce((a, o) => (a << 8n) | BigInt(o), 0n);

function v6ToBig(ip: string): bigint {
  let s = ip;
  // A trailing dotted quad (::ffff:192.0.2.1) is the last two groups.
  const quad = /\d+\.\d+\.\d+\.\d+$/.exec(s)?.[0];
  if (quad) s = s.slice(0, -quad.length) + `${(v4ToBig(quad) >> 16n).toString(16)}:${(v4ToBig(quad) & 0xffffn).toString(16)}`;
  const [head, tail] = s.split('::');
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}

const bigToV4 = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
const bigToV6 = (n: bigint) => canonicalIp(Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - i * 16)) & 0xffffn).toString(16)).join(':'))!;

function isDomain(d: string): boolean {
  const a = domainToASCII(d);
  return a.length > 0 && a.length <= 253 && a.includes('.') && a.split('.').every((l) => /^[a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(l));
}

function isAddress(s: string): boolean {
  const at = s.lastIndexOf('@');
  return at > 0 && at <= 64 && !/\s/.test(s.slice(0, at)) && isDomain(s.slice(at + 1));
}

// --- the policies table ---

const isActive = (r: { pinned: number | boolean; expires_at: number | null }, now: number) =>
  Boolean(r.pinned) || r.expires_at === null || r.expires_at > now;

function toRow(r: Selectable<PoliciesTable>, now: number): PolicyRow {
  return {
    id: r.id,
    target_kind: r.target_kind as PolicyTargetKind,
    target: r.target,
    action: r.action as PolicyAction,
    params: JSON.parse(r.params) as Record<string, unknown>,
    reason: r.reason,
    evidence: JSON.parse(r.evidence) as Record<string, unknown>,
    created_at: Number(r.created_at),
    expires_at: r.expires_at === null ? null : Number(r.expires_at),
    pinned: Boolean(r.pinned),
    source: r.source,
    state: isActive(r, now) ? 'active' : 'expired',
  };
}

const expiryOf = (p: PolicyInput, now: number) => (p.pinned || p.ttl_s == null ? null : now + p.ttl_s * 1000);

export async function addPolicy(db: Kysely<DB>, p: PolicyInput, now = Date.now()): Promise<PolicyRow> {
  const v = validatePolicyInput(p);
  const row = {
    id: 'P' + queueId(now),
    target_kind: v.target_kind,
    target: v.target,
    action: v.action,
    params: JSON.stringify(v.params ?? {}),
    reason: v.reason,
    evidence: JSON.stringify(v.evidence ?? {}),
    created_at: now,
    expires_at: expiryOf(v, now),
    pinned: v.pinned ? 1 : 0,
    source: v.source ?? 'admin',
  };
  await db.insertInto('policies').values(row).execute();
  return toRow(row, now);
}

/**
 * The analyzer's write: if an ACTIVE policy with the same target_kind, target and action exists, extend its expiry
 * to max(current, now+ttl) (unless pinned: left as is) and replace its evidence; else add. Returns the row and
 * whether it was new.
 */
export async function upsertFinding(db: Kysely<DB>, p: PolicyInput, now = Date.now()): Promise<{ row: PolicyRow; created: boolean }> {
  const v = validatePolicyInput(p);
  return db.transaction().execute(async (trx) => {
    const found = (
      await trx
        .selectFrom('policies')
        .selectAll()
        .where('target_kind', '=', v.target_kind)
        .where('target', '=', v.target)
        .where('action', '=', v.action)
        .orderBy('created_at', 'desc')
        .execute()
    ).find((r) => isActive(r, now));
    if (!found) return { row: await addPolicy(trx, v, now), created: true };
    if (found.pinned) return { row: toRow(found, now), created: false };
    const want = expiryOf({ ...v, pinned: false }, now);
    const expires_at = found.expires_at === null || want === null ? null : Math.max(Number(found.expires_at), want);
    const evidence = JSON.stringify(v.evidence ?? {});
    await trx.updateTable('policies').set({ expires_at, evidence }).where('id', '=', found.id).execute();
    return { row: toRow({ ...found, expires_at, evidence }, now), created: false };
  });
}

export async function removePolicy(db: Kysely<DB>, id: string): Promise<boolean> {
  const r = await db.deleteFrom('policies').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Sets the expiry to now + ttl_s (null: never), reviving an expired policy. A pinned policy is left as it is. */
export async function extendPolicy(db: Kysely<DB>, id: string, ttl_s: number | null, now = Date.now()): Promise<PolicyRow | undefined> {
  if (ttl_s !== null && !(Number.isInteger(ttl_s) && ttl_s >= 1)) throw new Error(`ttl_s must be a whole number of seconds, at least 1`);
  await db
    .updateTable('policies')
    .set({ expires_at: ttl_s === null ? null : now + ttl_s * 1000 })
    .where('id', '=', id)
    .where('pinned', '=', 0)
    .execute();
  return getPolicy(db, id, now);
}

/** Pinned: never expires (expires_at null) and the analyzer never changes it. Unpinning leaves it without expiry. */
export async function pinPolicy(db: Kysely<DB>, id: string, pinned: boolean): Promise<PolicyRow | undefined> {
  const set = pinned ? { pinned: 1, expires_at: null } : { pinned: 0 };
  await db.updateTable('policies').set(set).where('id', '=', id).execute();
  return getPolicy(db, id);
}

export async function getPolicy(db: Kysely<DB>, id: string, now = Date.now()): Promise<PolicyRow | undefined> {
  const r = await db.selectFrom('policies').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toRow(r, now);
}

/**
 * Active policies (all with `all`), newest first. `target` matches the target exactly (case-insensitively);
 * `source` matches the source or its prefix before ':' ("analyzer" lists every detector's).
 */
export async function listPolicies(
  db: Kysely<DB>,
  opts: {
    all?: boolean;
    target?: string;
    source?: string;
    limit?: number;
    /** Only the expired ones (with `all`). */
    expired?: boolean;
    kind?: PolicyTargetKind;
    action?: PolicyAction;
    /** Only those listed after this id (ids sort by creation time): the next page. */
    before?: string;
  } = {},
  now = Date.now(),
): Promise<PolicyRow[]> {
  let q = db.selectFrom('policies').selectAll();
  if (!opts.all) q = q.where((eb) => eb.or([eb('pinned', '=', 1), eb('expires_at', 'is', null), eb('expires_at', '>', now)]));
  if (opts.expired) q = q.where('pinned', '=', 0).where('expires_at', '<=', now);
  if (opts.kind) q = q.where('target_kind', '=', opts.kind);
  if (opts.action) q = q.where('action', '=', opts.action);
  if (opts.before) q = q.where('id', '<', opts.before);
  if (opts.target) q = q.where('target', '=', opts.target.trim().toLowerCase());
  if (opts.source) {
    const prefix = `${opts.source}:`;
    // substr rather than LIKE: detector names hold '_', a LIKE wildcard.
    q = q.where((eb) => eb.or([eb('source', '=', opts.source!), eb(sql<string>`substr(source, 1, ${prefix.length})`, '=', prefix)]));
  }
  q = q.orderBy('created_at', 'desc').orderBy('id', 'desc');
  if (opts.limit !== undefined) q = q.limit(opts.limit);
  return (await q.execute()).map((r) => toRow(r, now));
}

/** Deletes unpinned policies that expired before now - olderThanMs; returns how many. */
export async function purgeExpiredPolicies(db: Kysely<DB>, olderThanMs: number, now = Date.now()): Promise<number> {
  const r = await db
    .deleteFrom('policies')
    .where('pinned', '=', 0)
    .where('expires_at', 'is not', null)
    .where('expires_at', '<', now - olderThanMs)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

// --- source metadata (source_stats) ---

/** The command line's target kinds as the data matrix names them. */
const SOURCE_KIND: Record<string, string> = { cidr: 'net', domain: 'sender_domain' };
export const SOURCE_KINDS = ['ip', 'net', 'helo', 'sender_domain', 'sender'] as const;

/** The table's kind for a kind as an admin writes it (cidr → net, domain → sender_domain), or an Error. */
export function sourceKind(kind: string): string {
  const k = SOURCE_KIND[kind] ?? kind;
  if (!(SOURCE_KINDS as readonly string[]).includes(k)) throw new Error(`kind "${kind}" is not one of ip, cidr, helo, sender, domain`);
  return k;
}

function sourceKey(kind: string, key: string): string {
  const k = key.trim().toLowerCase();
  if (kind === 'ip') return canonicalIp(k.replace(/^::ffff:(?=\d+\.)/, '')) ?? k;
  if (kind === 'net') return network(k) ?? k;
  return k;
}

function toSource(r: Selectable<SourceStatsTable>): SourceRow {
  // PostgreSQL bigint columns may arrive as text from a pool without Postern's type parsers.
  const n = (v: number | string) => Number(v);
  const row: SourceRow = {
    kind: r.kind,
    key: r.key,
    first_seen: n(r.first_seen),
    last_seen: n(r.last_seen),
    connections: n(r.connections),
    messages: n(r.messages),
    recipients: n(r.recipients),
    unknown_recipients: n(r.unknown_recipients),
    refused: n(r.refused),
    quarantined: n(r.quarantined),
    delivered: n(r.delivered),
    protocol_errors: n(r.protocol_errors),
    score_sum: n(r.score_sum),
    score_n: n(r.score_n),
    score_hist: JSON.parse(r.score_hist) as Record<string, number>,
    actions: JSON.parse(r.actions) as Record<string, number>,
    unknown_ratio: 0,
    score_avg: null,
  };
  row.unknown_ratio = row.recipients ? row.unknown_recipients / row.recipients : 0;
  row.score_avg = row.score_n ? row.score_sum / row.score_n : null;
  return row;
}

export async function getSource(db: Kysely<DB>, kind: string, key: string): Promise<SourceRow | undefined> {
  const k = sourceKind(kind);
  const r = await db.selectFrom('source_stats').selectAll().where('kind', '=', k).where('key', '=', sourceKey(k, key)).executeTakeFirst();
  return r && toSource(r);
}

const ORDER = { last_seen: 'last_seen', unknown: 'unknown_recipients', refused: 'refused', messages: 'messages' } as const;

/** Sources, most recently seen first by default; the other orders rank by the count, highest first. */
export async function listSources(
  db: Kysely<DB>,
  opts: { kind?: string; order?: 'last_seen' | 'unknown' | 'refused' | 'messages'; limit?: number } = {},
): Promise<SourceRow[]> {
  let q = db.selectFrom('source_stats').selectAll();
  if (opts.kind) q = q.where('kind', '=', sourceKind(opts.kind));
  q = q.orderBy(ORDER[opts.order ?? 'last_seen'], 'desc').orderBy('last_seen', 'desc').limit(opts.limit ?? 50);
  return (await q.execute()).map(toSource);
}
