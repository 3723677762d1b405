// The clusters' REST API under /api/v1/clusters: list, show (members, what was done to each copy, where copies went
// out to) and an admin's mark, safe or bad. Admins (and web.api_token) read and mark; auditors read.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { actorOf, allow } from './auth/access.ts';
import { CLUSTER_STATES, ClusterError, listClusters, markCluster, showCluster } from '../similarity/report.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';

const time = z.string().transform((s, ctx) => {
  const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (Number.isFinite(n)) return n;
  ctx.addIssue({ code: 'custom', message: 'expected milliseconds since the epoch or an ISO 8601 time such as 2026-01-31T08:00:00Z' });
  return z.NEVER;
});

const ListQuery = z.strictObject({
  state: z.enum(CLUSTER_STATES).optional(),
  since: time.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const ShowQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(1000) });
const Id = z.strictObject({
  id: z
    .string()
    .regex(/^[1-9]\d{0,15}$/, 'expected a cluster id (a whole number)')
    .transform(Number)
    .refine(Number.isSafeInteger, 'expected a cluster id (a whole number)'),
});
const MarkBody = z
  .strictObject({
    verdict: z.enum(['safe', 'bad']),
    reason: z.string().trim().min(1).max(500).optional(),
    action: z.enum(['quarantine', 'block']).optional(),
  })
  .refine((b) => b.verdict === 'bad' || b.action === undefined, { path: ['action'], message: 'applies only to verdict bad' });

/** Parses with zod; a failure is a 400 whose message names each field and what is wrong with it. */
function parse<T extends z.ZodType>(schema: T, value: unknown, where: 'query' | 'body' | 'path'): z.infer<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const msg = r.error.issues
    .map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys.join(', ') : i.path.join('.');
      return `${where}${keys ? ` ${keys}` : ''}: ${i.message}`;
    })
    .join('; ');
  throw new WebError(400, 'bad_request', msg);
}

export const clustersApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db, emit } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };
  const mark = { preHandler: allow(deps.config, 'admin') };

  app.get('/', read, async (req) => {
    const q = parse(ListQuery, req.query, 'query');
    return { items: await listClusters(db, q) };
  });

  app.get('/:id', read, async (req) => {
    const { id } = parse(Id, req.params, 'path');
    const { limit } = parse(ShowQuery, req.query, 'query');
    const d = await showCluster(db, id, { limit });
    if (!d) throw new WebError(404, 'not_found', `no cluster ${id}`);
    return d;
  });

  app.post('/:id/mark', mark, async (req) => {
    const { id } = parse(Id, req.params, 'path');
    const body = parse(MarkBody, req.body, 'body');
    const by = actorOf(req.principal!);
    try {
      const policy = await markCluster(db, id, body.verdict, { by, reason: body.reason, action: body.action });
      emit('cluster.marked', { data: { cluster: id, verdict: body.verdict, action: policy.action, policy: policy.id, by, reason: policy.reason } });
      return { cluster: id, verdict: body.verdict, policy };
    } catch (err) {
      if (!(err instanceof ClusterError)) throw err;
      throw new WebError(err.code === 'not_found' ? 404 : 400, err.code, err.message);
    }
  });
};
