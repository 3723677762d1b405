// GET /api/v1/alerts, for admins and auditors: what needs a person's eyes, in one list, newest first: the trend
// detectors' findings (harvest, flood, brute force, spraying, reputation, backscatter…), declared outbreaks,
// copies that could not be pulled back, and the store's errors; each with a severity and a line that says it.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { allow } from './auth/access.ts';
import { cursor, decodeCursor, limit, page, parse, time } from './api-query.ts';
import type { WebDeps } from './server.ts';

export const ALERT_TYPES = ['trends.finding', 'trends.alert', 'outbreak.declared', 'retro.failed', 'store.error'] as const;
export type Severity = 'critical' | 'high' | 'medium' | 'low';
const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;

export const AlertsQuery = z.strictObject({
  since: time.optional().describe('From when; milliseconds or ISO 8601.'),
  severity: z.enum(SEVERITIES).optional().describe('This severity or worse.'),
  limit: limit(50).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

const s = (v: unknown, dflt = '?') => (v === undefined || v === null || v === '' ? dflt : String(v));

/** The severity and the one-line summary of an alert event. */
export function describeAlert(type: string, d: Record<string, any>): { severity: Severity; summary: string } {
  switch (type) {
    case 'outbreak.declared':
      return { severity: 'critical', summary: `outbreak declared: cluster #${s(d.cluster)}${d.reason ? ` (${d.reason})` : ''}, ${s(d.action, 'action')} by ${s(d.by, 'the rule')}` };
    case 'retro.failed':
      return { severity: 'high', summary: `a delivered outbreak copy could not be pulled back${d.rcpt ? ` from ${d.rcpt}` : ''}: ${s(d.error ?? d.reason, 'error')}` };
    case 'trends.alert': {
      const sev = (SEVERITIES as readonly string[]).includes(String(d.severity)) ? (d.severity as Severity) : 'medium';
      return { severity: sev, summary: s(d.summary, `${s(d.kind)} for ${s(d.user)}`) };
    }
    case 'store.error':
      return { severity: 'high', summary: `store error${d.op ? ` in ${d.op}` : ''}: ${s(d.error ?? d.message, 'error')}` };
    default: {
      // A user protected from a distributed attack and a spraying address weigh more than a single guesser or a
      // sender's flood; a finding that only extended a policy already there is the same attack going on.
      const wide = d.target_kind === 'user' || /spraying|distributed/.test(s(d.reason, ''));
      const severity: Severity = d.created === false ? 'low' : wide ? 'high' : 'medium';
      const what = d.reason ? s(d.reason) : `${s(d.detector)} on ${s(d.target_kind)} ${s(d.target)}`;
      return { severity, summary: `${what} → ${s(d.action)} ${s(d.target_kind)} ${s(d.target)}${d.created === false ? ' (extended)' : ''}` };
    }
  }
}

export const alertsApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };

  app.get('/', read, async (req) => {
    const q = parse(AlertsQuery, req.query, 'query');
    const worst = q.severity ? SEVERITIES.indexOf(q.severity) : SEVERITIES.length - 1;
    const out: { id: number; ts: number; type: string; severity: Severity; summary: string; ip: string | null; data: Record<string, unknown> }[] = [];
    let before = decodeCursor(q.cursor, 'number');
    // A severity filter is applied after reading: read on in pages until the page is full or the events end.
    for (let round = 0; round < 20 && out.length <= q.limit; round++) {
      let sel = deps.db.selectFrom('events').select(['id', 'ts', 'type', 'ip', 'data']).where('type', 'in', ALERT_TYPES);
      if (q.since !== undefined) sel = sel.where('ts', '>=', q.since);
      if (before !== undefined) sel = sel.where('id', '<', before);
      const rows = await sel.orderBy('id', 'desc').limit(500).execute();
      for (const r of rows) {
        const data = JSON.parse(r.data) as Record<string, unknown>;
        const a = describeAlert(r.type, data);
        if (SEVERITIES.indexOf(a.severity) <= worst) out.push({ id: Number(r.id), ts: Number(r.ts), type: r.type, ...a, ip: r.ip, data });
      }
      if (rows.length < 500) break;
      before = Number(rows[rows.length - 1].id);
    }
    return { ...page(out, q.limit, (a) => a.id), limit: q.limit };
  });
};
