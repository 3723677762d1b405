// The audit API, GET /api/v1/audit: the trail `postern audit` prints (monitor.audit.users), read by the same
// function, as JSON (default), CSV or the story's text. Admins (web.api_token) and auditors read every user's; a
// user account only its own addresses'.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { auditCsv, auditJson, auditTrail, MAX_EVENTS, sinceTime } from '../cli/audit.ts';
import { UsageError } from '../cli/policies.ts';
import { renderStory } from '../monitor/audit/story.ts';
import { allow, mayRead } from './auth/access.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';

const Query = z.strictObject({
  user: z.string().trim().min(1, 'missing: the user whose trail to show').max(320, 'longer than 320 characters').transform((s) => s.toLowerCase()),
  since: z.string().max(64).optional(),
  session: z.string().min(1).max(128).optional(),
  format: z.enum(['json', 'csv', 'text']).default('json'),
});

export const auditApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const read = { preHandler: allow(deps.config, 'admin', 'auditor', 'user') };

  app.get('/', read, async (req, reply) => {
    const r = Query.safeParse(req.query ?? {});
    if (!r.success) {
      const msg = r.error.issues.map((i) => `query ${i.code === 'unrecognized_keys' ? i.keys.join(', ') : i.path.join('.')}: ${i.message}`).join('; ');
      throw new WebError(400, 'bad_request', msg);
    }
    const q = r.data;
    if (!mayRead(req.principal!, q.user)) throw new WebError(403, 'forbidden', `a user account reads the audit trail of its own addresses only, not ${q.user}`);
    let since: number;
    try {
      // As --since: a duration back from now (30m, 24h, 7d) or an ISO time; default 24 h.
      since = sinceTime(q.since, Date.now());
    } catch (err) {
      if (err instanceof UsageError) throw new WebError(400, 'bad_request', `query since: ${err.message.replace(/^--since /, '')}`);
      throw err;
    }
    const { events, truncated } = await auditTrail({ db: deps.db }, q.user, { since, session: q.session });
    // A trail longer than MAX_EVENTS is read in pieces, as with the CLI: the header says so.
    if (truncated) reply.header('x-postern-truncated', String(MAX_EVENTS));
    if (q.format === 'csv') return reply.type('text/csv; charset=utf-8').send(`${auditCsv(events)}\n`);
    if (q.format === 'text') return reply.type('text/plain; charset=utf-8').send(events.length ? `${renderStory(events)}\n` : '');
    return { ...auditJson(q.user, since, events), truncated };
  });
};
