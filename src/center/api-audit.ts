// The audit API, GET /api/v1/audit: the trail `postern audit` prints (monitor.audit.users), read by the same
// function, as JSON (default), CSV or the story's text. Admins (web.api_token) and auditors read every user's; a
// user account only its own addresses'. Under /users, who is audited: the config's patterns and those admins add
// and remove here (as `postern audit users` does), each change recorded and announced on the policy bus.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { auditCsv, auditJson, auditTrail, MAX_EVENTS, sinceTime } from '../cli/audit.ts';
import { UsageError } from '../cli/policies.ts';
import { renderStory } from '../monitor/audit/story.ts';
import { addAuditUser, auditPattern, AuditPatternError, listAuditUsers, removeAuditUser } from '../monitor/audit/users.ts';
import { actorOf, allow, mayRead } from './auth/access.ts';
import { parse } from './api-query.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';

const Query = z.strictObject({
  user: z.string().trim().min(1, 'missing: the user whose trail to show').max(320, 'longer than 320 characters').transform((s) => s.toLowerCase()),
  since: z.string().max(64).optional(),
  session: z.string().min(1).max(128).optional(),
  format: z.enum(['json', 'csv', 'text']).default('json'),
});

export const AuditUserBody = z.strictObject({ pattern: z.string().max(320).describe('An address, *@domain or * (lower-cased).') });
export const AuditUserParams = z.strictObject({ pattern: z.string().min(1).max(320).describe('The pattern, URL-encoded.') });

/** The pattern of a body or path, checked; a bad one is a 400 naming where it came from. */
function checked(text: string, where: string): string {
  try {
    return auditPattern(text);
  } catch (err) {
    if (err instanceof AuditPatternError) throw new WebError(400, 'bad_request', `${where}: ${err.message}`);
    throw err;
  }
}

export const auditApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const read = { preHandler: allow(deps.config, 'admin', 'auditor', 'user') };
  const staff = { preHandler: allow(deps.config, 'admin', 'auditor') };
  const write = { preHandler: allow(deps.config, 'admin') };
  const configured = deps.config.monitor.audit.users;

  /** This process reads the table at once; the others when the bus tells them, or within 5 s. */
  async function changed(pattern: string): Promise<void> {
    await deps.audited?.load();
    deps.announce?.({ op: 'audit', id: pattern });
  }

  app.get('/users', staff, async () => ({ items: await listAuditUsers(deps.db, configured) }));

  app.post('/users', write, async (req, reply) => {
    const body = parse(AuditUserBody, req.body, 'body');
    const pattern = checked(body.pattern, 'body pattern');
    if (configured.some((p) => p.toLowerCase() === pattern)) throw new WebError(409, 'in_config', `${pattern} is already audited by the configuration (monitor.audit.users)`);
    const by = actorOf(req.principal!);
    const { user, created } = await addAuditUser(deps.db, pattern, by);
    if (created) {
      deps.emit('audit.user_added', { data: { pattern, by } });
      await changed(pattern);
    }
    return reply.code(created ? 201 : 200).send(user);
  });

  app.delete('/users/:pattern', write, async (req) => {
    const pattern = checked(parse(AuditUserParams, req.params, 'path').pattern, 'path pattern');
    if (configured.some((p) => p.toLowerCase() === pattern)) {
      throw new WebError(409, 'in_config', `${pattern} is audited by the configuration: remove it from monitor.audit.users in the config file and restart`);
    }
    if (!(await removeAuditUser(deps.db, pattern))) throw new WebError(404, 'not_found', `${pattern} is not an audited user`);
    const by = actorOf(req.principal!);
    deps.emit('audit.user_removed', { data: { pattern, by } });
    await changed(pattern);
    return { removed: pattern };
  });

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
