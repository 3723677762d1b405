// GET /api/v1/sources, for admins and auditors: the data matrix's per-source metadata (source_stats) as a ranked
// list: the addresses, networks, HELO names, sender domains or senders that sent the most, were refused or held the
// most, each with the active policies that act on it, so the center can show who sends what and link to the policy.
import net from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { networkOf } from '../trends/detector.ts';
import type { DB } from '../store/schema.ts';
import { allow } from './auth/access.ts';
import { cursor, encodeCursor, limit, parse, time } from './api-query.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';

/** The API's kinds and the table's names for them (the analyzer's: src/trends/source-stats.ts). */
export const SOURCE_KIND = { address: 'ip', network: 'net', helo: 'helo', domain: 'sender_domain', sender: 'sender' } as const;
export type SourceKind = keyof typeof SOURCE_KIND;

/** What a list may be ranked by, highest first, and the column behind each. */
export const SOURCE_SORT = {
  messages: 'messages',
  recipients: 'recipients',
  refused: 'refused',
  quarantined: 'quarantined',
  unknown: 'unknown_recipients',
  connections: 'connections',
  last_seen: 'last_seen',
} as const;

export const SourcesQuery = z.strictObject({
  kind: z.enum(Object.keys(SOURCE_KIND) as [SourceKind, ...SourceKind[]]).default('address').describe('address, network (/24 or /64), helo, domain (sender domain) or sender.'),
  sort: z.enum(Object.keys(SOURCE_SORT) as [keyof typeof SOURCE_SORT, ...(keyof typeof SOURCE_SORT)[]]).default('messages').describe('Ranked by this, highest first.'),
  since: time.optional().describe('Only sources last seen at or after this time (ms since the epoch or ISO 8601); the counts are still totals since first seen.'),
  limit: limit(50).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

/** An active policy that acts on a source: enough for a badge and a link. */
export interface SourcePolicy {
  id: string;
  action: string;
  target_kind: string;
  target: string;
  expires_at: number | null;
  /** The recipients it is scoped to (params.for), when it does not apply to all. */
  for: string | null;
}

const share = (n: number, of: number) => (of > 0 ? Math.min(1, n / of) : 0);

// The cursor holds the sort value and the key of the last item: "<value>:<key>" (values are whole numbers).
const CURSOR = /^(\d+):([\s\S]+)$/;
function afterCursor(c: string | undefined): { n: number; key: string } | undefined {
  if (c === undefined) return undefined;
  try {
    const k = (JSON.parse(Buffer.from(c, 'base64url').toString()) as { k?: unknown }).k;
    const m = typeof k === 'string' ? CURSOR.exec(k) : null;
    if (m) return { n: Number(m[1]), key: m[2] };
  } catch {
    // Not ours: answered below.
  }
  throw new WebError(400, 'bad_request', 'query cursor: not a cursor this list gave out (use next_cursor from the previous page)');
}

const prefixOf = (cidr: string) => Number(cidr.split('/')[1] ?? (cidr.includes(':') ? 128 : 32));

/** A network policy's block list, or undefined when its target does not parse (never expected: they are checked). */
function blockList(cidr: string): net.BlockList | undefined {
  const [base] = cidr.split('/');
  const family = net.isIP(base);
  if (!family) return undefined;
  const list = new net.BlockList();
  try {
    list.addSubnet(base, prefixOf(cidr), family === 4 ? 'ipv4' : 'ipv6');
    return list;
  } catch {
    return undefined;
  }
}

/**
 * The active policies acting on each key: for an address, its own and those of networks holding it; for a network,
 * those of networks as wide or wider; for a sender domain, the domain's and "*@domain" senders'; for a sender, its
 * own, its "*@domain" and its domain's; for a HELO name, its own. Read per page, so a table of thousands of address
 * blocks is never loaded whole but for the network policies, which are few.
 */
export async function policiesFor(db: Kysely<DB>, kind: SourceKind, keys: string[], now = Date.now()): Promise<Map<string, SourcePolicy[]>> {
  const out = new Map<string, SourcePolicy[]>(keys.map((k) => [k, []]));
  if (!keys.length) return out;
  const domainOf = (s: string) => s.slice(s.lastIndexOf('@') + 1);
  // What each key is looked up by: [target_kind, target] pairs.
  const wanted = new Map<string, string[]>();
  const want = (tk: string, t: string, key: string) => wanted.set(`${tk}\n${t}`, [...(wanted.get(`${tk}\n${t}`) ?? []), key]);
  for (const k of keys) {
    if (kind === 'address') want('ip', k, k);
    if (kind === 'helo') want('helo', k, k);
    if (kind === 'domain') {
      want('domain', k, k);
      want('sender', `*@${k}`, k);
    }
    if (kind === 'sender') {
      want('sender', k, k);
      want('sender', `*@${domainOf(k)}`, k);
      want('domain', domainOf(k), k);
    }
  }
  const kinds = [...new Set([...wanted.keys()].map((w) => w.split('\n')[0]))];
  const nets = kind === 'address' || kind === 'network';
  if (nets) kinds.push('cidr');
  if (!kinds.length) return out;
  const targets = [...new Set([...wanted.keys()].map((w) => w.split('\n')[1]))];
  const rows = await db
    .selectFrom('policies')
    .select(['id', 'target_kind', 'target', 'action', 'params', 'expires_at'])
    .where('target_kind', 'in', kinds)
    .where((eb) => {
      const exact = targets.length ? [eb('target', 'in', targets)] : [];
      return eb.or(nets ? [...exact, eb('target_kind', '=', 'cidr')] : exact);
    })
    .where((eb) => eb.or([eb('pinned', '=', 1), eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  for (const r of rows) {
    let scope: string | null = null;
    try {
      const f = (JSON.parse(r.params) as { for?: unknown }).for;
      if (typeof f === 'string') scope = f;
    } catch {
      // Params are written as JSON by policy/admin.ts; a row that is not is shown unscoped.
    }
    const p: SourcePolicy = { id: r.id, action: r.action, target_kind: r.target_kind, target: r.target, expires_at: r.expires_at === null ? null : Number(r.expires_at), for: scope };
    if (r.target_kind === 'cidr') {
      const list = blockList(r.target);
      if (!list) continue;
      for (const k of keys) {
        const base = kind === 'network' ? k.split('/')[0] : k;
        const family = net.isIP(base) === 6 ? 'ipv6' : 'ipv4';
        if (!net.isIP(base) || !list.check(base, family)) continue;
        // A narrower network inside this one does not act on all of it.
        if (kind === 'network' && prefixOf(r.target) > prefixOf(k)) continue;
        out.get(k)!.push(p);
      }
      continue;
    }
    for (const k of wanted.get(`${r.target_kind}\n${r.target}`) ?? []) if (!out.get(k)!.some((x) => x.id === p.id)) out.get(k)!.push(p);
  }
  return out;
}

export const sourcesApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };

  app.get('/', read, async (req) => {
    const q = parse(SourcesQuery, req.query, 'query');
    const col = SOURCE_SORT[q.sort];
    let s = db.selectFrom('source_stats').selectAll().where('kind', '=', SOURCE_KIND[q.kind]);
    if (q.since !== undefined) s = s.where('last_seen', '>=', q.since);
    const after = afterCursor(q.cursor);
    // Keyset over (value descending, key ascending): the next page starts after the last item's pair.
    if (after) s = s.where((eb) => eb.or([eb(col, '<', after.n), eb.and([eb(col, '=', after.n), eb('key', '>', after.key)])]));
    const rows = await s.orderBy(col, 'desc').orderBy('key', 'asc').limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit);
    const policies = await policiesFor(db, q.kind, page.map((r) => r.key));
    const items = page.map((r) => {
      const n = (v: number | string) => Number(v);
      const recipients = n(r.recipients);
      return {
        kind: q.kind,
        key: r.key,
        network: q.kind === 'address' ? networkOf(r.key) : null,
        first_seen: n(r.first_seen),
        last_seen: n(r.last_seen),
        connections: n(r.connections),
        messages: n(r.messages),
        recipients,
        unknown_recipients: n(r.unknown_recipients),
        refused: n(r.refused),
        quarantined: n(r.quarantined),
        delivered: n(r.delivered),
        refused_share: share(n(r.refused), recipients),
        quarantined_share: share(n(r.quarantined), recipients),
        unknown_share: share(n(r.unknown_recipients), recipients),
        score_avg: n(r.score_n) ? n(r.score_sum) / n(r.score_n) : null,
        policies: policies.get(r.key) ?? [],
      };
    });
    const last = page[page.length - 1];
    return { items, next_cursor: rows.length > q.limit ? encodeCursor(`${Number(last[col])}:${last.key}`) : null, limit: q.limit };
  });
};
