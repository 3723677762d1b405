// Mailbox activity under /api/v1/mailboxes, for admins and auditors: the mailbox users seen logging in (or failing
// to), and one user's story: the addresses it logged in from (mailbox_logins), its latest logins and failures, the
// attacks on it (policies on the user or on the addresses that failed for it, findings naming it), whether it is
// audited, and its latest audited sessions, read as `postern audit` reads them.
import type { FastifyPluginAsync } from 'fastify';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import type { DB } from '../store/schema.ts';
import { auditTrail } from '../cli/audit.ts';
import { storyLine, type AuditEvent } from '../monitor/audit/story.ts';
import { listPolicies, type PolicyRow } from '../policy/admin.ts';
import { addressMatches } from '../policy/match.ts';
import { allow } from './auth/access.ts';
import { cursor, decodeCursor, encodeCursor, limit, parse, time } from './api-query.ts';
import type { WebDeps } from './server.ts';

const DAY = 86_400_000;
const AUTH_TYPES = ['auth.succeeded', 'auth.failed'] as const;
/** The most auth events the user list folds: enough for days of a mid-sized site, bounded for a huge one. */
const LIST_SCAN = 20_000;
/** The addresses that failed for a user whose policies are looked up. */
const MAX_FAILED_IPS = 20;

export const MailboxesQuery = z.strictObject({
  q: z.string().trim().max(320).optional().describe('Substring of the user, case-insensitive.'),
  since: time.optional().describe('From when (default 7 days ago); milliseconds or ISO 8601.'),
  limit: limit(50).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

export const MailboxParams = z.strictObject({
  user: z.string().trim().min(1).max(320).transform((s) => s.toLowerCase()).describe('The mailbox user (login name), URL-encoded.'),
});

export const MailboxQuery = z.strictObject({
  since: time.optional().describe('From when (default 7 days ago); milliseconds or ISO 8601.'),
  events: limit(50).describe('The latest auth events shown, at most 500.'),
  sessions: z.coerce.number().int().min(1).max(100).default(10).describe('The latest audited sessions shown.'),
});

/** A LIKE on the stored JSON that narrows rows to those mentioning `text` (quoted); the wildcards become "_". */
const mentions = (text: string) => `%${JSON.stringify(text).replace(/[%_\\]/g, '_')}%`;

interface AuthRow {
  id: number;
  ts: number;
  type: string;
  ip: string | null;
  data: Record<string, unknown>;
}

/** Auth events of one user, newest first (the user matched exactly, case-insensitively, after the rough filter). */
async function authEvents(db: Kysely<DB>, user: string, since: number, n: number): Promise<AuthRow[]> {
  const out: AuthRow[] = [];
  let before: number | undefined;
  // A few rounds: the LIKE also matches other users whose data merely contains the name (rare).
  for (let round = 0; round < 5 && out.length < n; round++) {
    let q = db
      .selectFrom('events')
      .select(['id', 'ts', 'type', 'ip', 'data'])
      .where('type', 'in', AUTH_TYPES)
      .where('ts', '>=', since)
      .where(sql<string>`lower(data)`, 'like', mentions(user));
    if (before !== undefined) q = q.where('id', '<', before);
    const rows = await q.orderBy('id', 'desc').limit(n * 2).execute();
    for (const r of rows) {
      const data = JSON.parse(r.data) as Record<string, unknown>;
      if (String(data.user ?? '').toLowerCase() === user && out.length < n) out.push({ id: Number(r.id), ts: Number(r.ts), type: r.type, ip: r.ip, data });
    }
    if (rows.length < n * 2) break;
    before = Number(rows[rows.length - 1].id);
  }
  return out;
}

/** Policies on the user and on the addresses that failed for it, active or expired since `since`, newest first. */
async function attacks(db: Kysely<DB>, user: string, ips: string[], since: number): Promise<PolicyRow[]> {
  const seen = new Map<string, PolicyRow>();
  const lists = [listPolicies(db, { all: true, kind: 'user', target: user, limit: 50 }), ...ips.map((ip) => listPolicies(db, { all: true, target: ip, limit: 20 }))];
  for (const list of await Promise.all(lists)) {
    for (const p of list) if (p.state === 'active' || p.pinned || (p.expires_at ?? Infinity) >= since) seen.set(p.id, p);
  }
  return [...seen.values()].sort((a, b) => b.created_at - a.created_at);
}

/** trends.finding events whose target or evidence names the user, newest first. */
async function findings(db: Kysely<DB>, user: string, since: number): Promise<{ id: number; ts: number; detector: string; reason: string; policy: string | null; target: string }[]> {
  const rows = await db
    .selectFrom('events')
    .select(['id', 'ts', 'data'])
    .where('type', '=', 'trends.finding')
    .where('ts', '>=', since)
    .where(sql<string>`lower(data)`, 'like', mentions(user))
    .orderBy('id', 'desc')
    .limit(200)
    .execute();
  const quoted = JSON.stringify(user);
  return rows
    .filter((r) => r.data.toLowerCase().includes(quoted))
    .slice(0, 50)
    .map((r) => {
      const d = JSON.parse(r.data) as Record<string, unknown>;
      return { id: Number(r.id), ts: Number(r.ts), detector: String(d.detector ?? ''), reason: String(d.reason ?? ''), policy: (d.policy as string) ?? null, target: `${d.target_kind}:${d.target}` };
    });
}

/** The latest `n` audited sessions, newest first, each with its story's lines. */
function sessions(events: AuditEvent[], n: number) {
  const by = new Map<string, AuditEvent[]>();
  for (const e of events) {
    const list = by.get(e.session);
    if (list) list.push(e);
    else by.set(e.session, [e]);
  }
  return [...by.entries()]
    .map(([id, list]) => {
      const login = list.find((e) => e.type === 'audit.session' && e.data.phase === 'login');
      const end = list.find((e) => e.type === 'audit.session' && e.data.phase === 'end');
      return {
        session: id,
        protocol: String(list[0].data.protocol ?? ''),
        ip: login?.ip ?? list[0].ip,
        started_at: list[0].ts,
        ended_at: end?.ts ?? null,
        lines: list.map((e) => ({ ts: e.ts, text: storyLine(e) })),
      };
    })
    .sort((a, b) => b.started_at - a.started_at)
    .slice(0, n);
}

export const mailboxesApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };
  const configured = deps.config.monitor.audit.users;
  const auditedBy = (user: string) => (deps.audited ? deps.audited.matching(user) : configured.filter((p) => addressMatches(p, user)));

  app.get('/', read, async (req) => {
    const q = parse(MailboxesQuery, req.query, 'query');
    const since = q.since ?? Date.now() - 7 * DAY;
    const needle = q.q?.toLowerCase();
    const users = new Map<string, { user: string; last_seen: number; succeeded: number; failed: number; last_ip: string | null }>();
    const rows = await db.selectFrom('events').select(['ts', 'type', 'ip', 'data']).where('type', 'in', AUTH_TYPES).where('ts', '>=', since).orderBy('id', 'desc').limit(LIST_SCAN).execute();
    for (const r of rows) {
      const user = String((JSON.parse(r.data) as { user?: unknown }).user ?? '').trim().toLowerCase();
      if (!user || (needle && !user.includes(needle))) continue;
      let u = users.get(user);
      if (!u) users.set(user, (u = { user, last_seen: Number(r.ts), succeeded: 0, failed: 0, last_ip: r.ip }));
      if (r.type === 'auth.succeeded') u.succeeded++;
      else u.failed++;
    }
    // Users whose auth events are past the scan or the window still have their known login addresses.
    let known = db.selectFrom('mailbox_logins').select(['user', 'ip', 'last_ok']).where('last_ok', '>=', since).orderBy('last_ok', 'desc').limit(LIST_SCAN);
    if (needle) known = known.where('user', 'like', `%${needle.replace(/[%_\\]/g, '_')}%`);
    for (const r of await known.execute()) {
      if (!users.has(r.user)) users.set(r.user, { user: r.user, last_seen: Number(r.last_ok), succeeded: 0, failed: 0, last_ip: r.ip });
    }
    const all = [...users.values()].sort((a, b) => b.last_seen - a.last_seen || a.user.localeCompare(b.user));
    const offset = decodeCursor(q.cursor, 'number') ?? 0;
    const items = all.slice(offset, offset + q.limit).map((u) => ({ ...u, audited: auditedBy(u.user).length > 0 }));
    return { items, next_cursor: offset + q.limit < all.length ? encodeCursor(offset + q.limit) : null, limit: q.limit, truncated: rows.length >= LIST_SCAN };
  });

  app.get('/:user', read, async (req) => {
    const { user } = parse(MailboxParams, req.params, 'path');
    const q = parse(MailboxQuery, req.query, 'query');
    const since = q.since ?? Date.now() - 7 * DAY;
    const [logins, auth, found, trail] = await Promise.all([
      db.selectFrom('mailbox_logins').selectAll().where('user', '=', user).orderBy('last_ok', 'desc').limit(500).execute(),
      authEvents(db, user, since, q.events),
      findings(db, user, since),
      auditTrail({ db }, user, { since }),
    ]);
    const failedIps = [...new Set(auth.filter((e) => e.type === 'auth.failed' && e.ip).map((e) => e.ip!.replace(/^::ffff:(?=\d+\.)/i, '')))].slice(0, MAX_FAILED_IPS);
    const patterns = auditedBy(user);
    return {
      user,
      since: new Date(since).toISOString(),
      audited: patterns.length > 0,
      audited_by: patterns,
      known_logins: logins.map((r) => ({ ip: r.ip, first_ok: Number(r.first_ok), last_ok: Number(r.last_ok), logins: Number(r.logins) })),
      auth: auth.map((e) => ({
        id: e.id,
        ts: e.ts,
        ip: e.ip,
        protocol: (e.data.protocol as string) ?? null,
        outcome: e.type === 'auth.succeeded' ? 'succeeded' : e.data.refused_by ? 'refused' : 'failed',
        ...(e.data.refused_by ? { refused_by: e.data.refused_by } : {}),
      })),
      attacks: { policies: await attacks(db, user, failedIps, since), findings: found, failed_ips: failedIps },
      audit: { sessions: sessions(trail.events, q.sessions), truncated: trail.truncated },
    };
  });
};
