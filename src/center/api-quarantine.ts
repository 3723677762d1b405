// The quarantine's REST API under /api/v1/quarantine, for admins and the monitoring center: list, show, download,
// release, delete, allow or block the sender, report. Admins (and web.api_token) do everything; auditors read; a
// user account sees and acts on the mail of its own addresses only, and lists senders for itself only.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MAX_LIST, QuarantineError } from '../quarantine/service.ts';
import { actorOf, allow, mayRead } from './auth/access.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';

const time = z.string().transform((s, ctx) => {
  const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (Number.isFinite(n)) return n;
  ctx.addIssue({ code: 'custom', message: 'expected milliseconds since the epoch or an ISO 8601 time such as 2026-01-31T08:00:00Z' });
  return z.NEVER;
});
const text = z.string().min(1).max(320);

const ListQuery = z.strictObject({
  rcpt: text.optional(),
  domain: text.optional(),
  sender: text.optional(),
  status: z.enum(['held', 'released', 'deleted', 'expired', 'any']).optional(),
  subject: z.string().max(200).optional(),
  since: time.optional(),
  until: time.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});
const NoBody = z.strictObject({});
const ListBody = z.strictObject({ scope: z.enum(['user', 'domain', 'global']) });
const ReportBody = z.strictObject({ class: z.enum(['spam', 'ham']) });

/** Parses with zod; a failure is a 400 whose message names each field and what is wrong with it. */
function parse<T extends z.ZodType>(schema: T, value: unknown, where: 'query' | 'body'): z.infer<T> {
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

export const quarantineApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { quarantine } = deps;
  const read = { preHandler: allow(deps.config, 'admin', 'auditor', 'user') };
  const act = { preHandler: allow(deps.config, 'admin', 'user') };

  /** Runs a service call, turning its coded errors into statuses: not found 404, not held 409, bad request 400. */
  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof QuarantineError)) throw err;
      const status = err.code === 'not_found' ? 404 : err.code === 'not_held' ? 409 : 400;
      throw new WebError(status, err.code, err.message);
    }
  }

  /** The entry, when the principal may see it: another recipient's entry is a 404 like a missing one (ids must
   * not be probed). */
  const must = async (req: FastifyRequest, id: string) => {
    const e = await quarantine.get(id);
    if (!e || !mayRead(req.principal!, e.rcpt)) throw new WebError(404, 'not_found', `no quarantined message ${id}`);
    return e;
  };

  app.get('/', read, async (req) => {
    const q = parse(ListQuery, req.query, 'query');
    const p = req.principal!;
    const { entries, total } = await quarantine.list(p.role === 'user' ? { ...q, rcptIn: p.addresses ?? [] } : q);
    return { items: entries, total, limit: q.limit, offset: q.offset };
  });

  app.get<{ Params: { id: string } }>('/:id', read, async (req) => must(req, req.params.id));

  app.get<{ Params: { id: string } }>('/:id/raw', read, async (req, reply) => {
    await must(req, req.params.id);
    const raw = await call(() => quarantine.raw(req.params.id));
    const name = req.params.id.replace(/[^A-Za-z0-9._@-]/g, '_');
    return reply.type('message/rfc822').header('content-disposition', `attachment; filename="${name}.eml"`).send(raw);
  });

  app.post<{ Params: { id: string } }>('/:id/release', act, async (req) => {
    parse(NoBody, req.body, 'body');
    await must(req, req.params.id);
    const { queueId, entry } = await call(() => quarantine.release(req.params.id, actorOf(req.principal!)));
    return { entry, queue_id: queueId };
  });

  app.post<{ Params: { id: string } }>('/:id/delete', act, async (req) => {
    parse(NoBody, req.body, 'body');
    await must(req, req.params.id);
    return { entry: await call(() => quarantine.delete(req.params.id, actorOf(req.principal!))) };
  });

  for (const kind of ['allow', 'block'] as const) {
    app.post<{ Params: { id: string } }>(`/:id/${kind}`, act, async (req) => {
      const { scope } = parse(ListBody, req.body, 'body');
      await must(req, req.params.id);
      // A user decides for its own mailbox; a domain's or everyone's list is an admin's call.
      if (req.principal!.role === 'user' && scope !== 'user') throw new WebError(403, 'forbidden', `scope ${scope} needs the role admin; a user account lists senders with scope user`);
      return { policy: await call(() => quarantine.listSender(req.params.id, kind, scope, actorOf(req.principal!))) };
    });
  }

  app.post<{ Params: { id: string } }>('/:id/report', act, async (req) => {
    const body = parse(ReportBody, req.body, 'body');
    await must(req, req.params.id);
    return await call(() => quarantine.report(req.params.id, body.class, actorOf(req.principal!)));
  });
};
