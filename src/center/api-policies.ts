// The live policies' API under /api/v1/policies: list for admins and auditors; add, lift, pin, unpin and extend for
// admins. The same functions as `postern policies`; each change is recorded as a policy.changed event and announced
// on the policy bus, so every gateway reads it at once (they re-read the table every second in any case).
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ACTIONS, TARGET_KINDS, addPolicy, extendPolicy, getPolicy, listPolicies, pinPolicy, PolicyInputError, removePolicy, validatePolicyInput, type PolicyRow } from '../policy/admin.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';
import { actorOf, allow } from './auth/access.ts';
import { cursor, decodeCursor, limit, page, parse } from './api-query.ts';

export const PoliciesQuery = z.strictObject({
  kind: z.enum(TARGET_KINDS).optional().describe('Target kind.'),
  action: z.enum(ACTIONS).optional().describe('Action.'),
  source: z.string().min(1).max(100).optional().describe('"admin", "analyzer" (every detector\'s) or a source such as "analyzer:harvest".'),
  target: z.string().min(1).max(320).optional().describe('The target, exactly (case-insensitive).'),
  state: z.enum(['active', 'expired', 'all']).default('active').describe('Active (default), expired, or all.'),
  limit: limit(100).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

/** The body of POST /api/v1/policies, as documented; validatePolicyInput is what decides. */
export const PolicyBody = z.strictObject({
  target_kind: z.enum(TARGET_KINDS),
  target: z.string(),
  action: z.enum(ACTIONS),
  params: z.record(z.string(), z.unknown()).optional().describe('throttle: rate, window_s; tarpit: delay_ms; redirect: to; for: a recipient scope (user@domain or *@domain); recipient targets: null_sender.'),
  reason: z.string().optional().describe('Why; shown wherever the policy is.'),
  evidence: z.record(z.string(), z.unknown()).optional(),
  ttl_s: z.number().int().min(1).nullable().optional().describe('Seconds until it expires; null or absent: never.'),
  pinned: z.boolean().optional().describe('Never expires and the analyzer leaves it alone.'),
});

export const PolicyParams = z.strictObject({ id: z.string().regex(/^P[0-9A-Z]{20}$/, 'expected a policy id such as P01JXYZ…') });
export const ExtendBody = z.strictObject({ ttl_s: z.number().int().min(1).nullable().describe('Seconds from now; null: never.') });
export const UnpinBody = z.strictObject({ ttl_s: z.number().int().min(1).nullable().optional().describe('An expiry to give it at once.') });
const NoBody = z.strictObject({});

export type PolicyOp = 'added' | 'lifted' | 'pinned' | 'unpinned' | 'extended';

export const policiesApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db, emit } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };
  const write = { preHandler: allow(deps.config, 'admin') };

  function changed(req: FastifyRequest, op: PolicyOp, p: PolicyRow): void {
    emit('policy.changed', {
      data: { op, policy: p.id, target_kind: p.target_kind, target: p.target, action: p.action, expires_at: p.expires_at, pinned: p.pinned, by: actorOf(req.principal!) },
    });
    deps.announce?.({ op: op === 'lifted' ? 'removed' : 'set', id: p.id });
  }

  async function must(id: string): Promise<PolicyRow> {
    const p = await getPolicy(db, id);
    if (!p) throw new WebError(404, 'not_found', `no policy ${id}`);
    return p;
  }

  app.get('/', read, async (req) => {
    const q = parse(PoliciesQuery, req.query, 'query');
    const rows = await listPolicies(db, {
      all: q.state !== 'active',
      expired: q.state === 'expired',
      kind: q.kind,
      action: q.action,
      source: q.source,
      target: q.target,
      before: decodeCursor(q.cursor, 'string'),
      limit: q.limit + 1,
    });
    return { ...page(rows, q.limit, (r) => r.id), limit: q.limit };
  });

  app.get('/:id', read, async (req) => must(parse(PolicyParams, req.params, 'path').id));

  app.post('/', write, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw new WebError(400, 'bad_request', 'body: expected a JSON object');
    if ('source' in body) throw new WebError(400, 'bad_request', 'body source: set by the server ("admin")');
    let input;
    try {
      input = validatePolicyInput({ reason: `added through the API by ${actorOf(req.principal!)}`, ...body, source: 'admin' });
    } catch (err) {
      if (err instanceof PolicyInputError) throw new WebError(400, 'bad_request', `body: ${err.message}`);
      throw err;
    }
    const p = await addPolicy(db, input);
    changed(req, 'added', p);
    return reply.code(201).send(p);
  });

  app.post('/:id/lift', write, async (req) => {
    const { id } = parse(PolicyParams, req.params, 'path');
    parse(NoBody, req.body, 'body');
    const p = await must(id);
    if (!(await removePolicy(db, id))) throw new WebError(404, 'not_found', `no policy ${id}`);
    changed(req, 'lifted', p);
    return { lifted: p };
  });

  app.post('/:id/pin', write, async (req) => {
    const { id } = parse(PolicyParams, req.params, 'path');
    parse(NoBody, req.body, 'body');
    await must(id);
    const p = (await pinPolicy(db, id, true))!;
    changed(req, 'pinned', p);
    return p;
  });

  app.post('/:id/unpin', write, async (req) => {
    const { id } = parse(PolicyParams, req.params, 'path');
    const { ttl_s } = parse(UnpinBody, req.body, 'body');
    await must(id);
    let p = (await pinPolicy(db, id, false))!;
    if (ttl_s !== undefined) p = (await extendPolicy(db, id, ttl_s))!;
    changed(req, 'unpinned', p);
    return p;
  });

  app.post('/:id/extend', write, async (req) => {
    const { id } = parse(PolicyParams, req.params, 'path');
    const { ttl_s } = parse(ExtendBody, req.body, 'body');
    const before = await must(id);
    if (before.pinned) throw new WebError(409, 'pinned', `${id} is pinned and never expires; unpin it to give it an expiry`);
    const p = (await extendPolicy(db, id, ttl_s))!;
    changed(req, 'extended', p);
    return p;
  });
};
