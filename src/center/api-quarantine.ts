// The quarantine's REST API under /api/v1/quarantine, for admins and the monitoring center: list, show, download,
// release, delete, allow or block the sender, report. Bearer token web.api_token until accounts exist.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { resolveSecret } from '../config/load.ts';
import { MAX_LIST, QuarantineError } from '../quarantine/service.ts';
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

const digest = (s: string) => createHash('sha256').update(s).digest();

export const quarantineApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { quarantine } = deps;
  // Hashed so that the comparison is constant-time whatever the lengths (Dovecot CVE-2026-27856 was this timing).
  const token = resolveSecret(deps.config.web.api_token);
  const want = token ? digest(token) : undefined;

  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (!want) throw new WebError(401, 'unauthorized', 'the API is off: web.api_token is not set in the configuration');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new WebError(401, 'unauthorized', 'missing "Authorization: Bearer <web.api_token>" header');
    if (!timingSafeEqual(digest(m[1]), want)) throw new WebError(401, 'unauthorized', 'wrong API token');
  });

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

  const must = async (id: string) => {
    const e = await quarantine.get(id);
    if (!e) throw new WebError(404, 'not_found', `no quarantined message ${id}`);
    return e;
  };

  app.get('/', async (req) => {
    const q = parse(ListQuery, req.query, 'query');
    const { entries, total } = await quarantine.list(q);
    return { items: entries, total, limit: q.limit, offset: q.offset };
  });

  app.get<{ Params: { id: string } }>('/:id', async (req) => must(req.params.id));

  app.get<{ Params: { id: string } }>('/:id/raw', async (req, reply) => {
    const raw = await call(() => quarantine.raw(req.params.id));
    const name = req.params.id.replace(/[^A-Za-z0-9._@-]/g, '_');
    return reply.type('message/rfc822').header('content-disposition', `attachment; filename="${name}.eml"`).send(raw);
  });

  app.post<{ Params: { id: string } }>('/:id/release', async (req) => {
    parse(NoBody, req.body, 'body');
    const { queueId, entry } = await call(() => quarantine.release(req.params.id, 'api'));
    return { entry, queue_id: queueId };
  });

  app.post<{ Params: { id: string } }>('/:id/delete', async (req) => {
    parse(NoBody, req.body, 'body');
    return { entry: await call(() => quarantine.delete(req.params.id, 'api')) };
  });

  for (const kind of ['allow', 'block'] as const) {
    app.post<{ Params: { id: string } }>(`/:id/${kind}`, async (req) => {
      const { scope } = parse(ListBody, req.body, 'body');
      return { policy: await call(() => quarantine.listSender(req.params.id, kind, scope, 'api')) };
    });
  }

  app.post<{ Params: { id: string } }>('/:id/report', async (req) => {
    const body = parse(ReportBody, req.body, 'body');
    return await call(() => quarantine.report(req.params.id, body.class, 'api'));
  });
};
