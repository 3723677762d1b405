// The HTTP server (fastify): quarantine links and the recipient's page, the quarantine API, and later the
// monitoring center. Each area is a fastify plugin of its own; this file holds what they share: security headers,
// body limits, and errors as JSON under /api and as pages elsewhere.
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import cookie from '@fastify/cookie';
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { Emit } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { DB } from '../store/schema.ts';
import type { QuarantineService } from '../quarantine/service.ts';
import type { LinkSigner } from '../quarantine/tokens.ts';
import { publicBase } from '../quarantine/links.ts';
import { splitListen } from '../gateway/server.ts';
import { CSS, CSS_PATH, notice } from './html.ts';
import { WebError } from './web-error.ts';
import { quarantinePages } from './quarantine-pages.ts';
import { quarantineApi } from './api-quarantine.ts';
import { clustersApi } from './api-clusters.ts';
import { centerUi, UI_PATH } from './ui.ts';
import { messagesApi } from './api-messages.ts';
import { policiesApi } from './api-policies.ts';
import { eventsApi } from './api-events.ts';
import { openApiRoute } from './openapi.ts';
import { metricsRoute } from './metrics.ts';
import type { AnalysisThreadStats } from '../analysis/threads.ts';
import type { EventSink } from '../matrix/sink.ts';
import type { PolicyChange } from '../matrix/live.ts';
import type { AnalyzerStats } from '../trends/analyzer.ts';
import { configTokenIdentifier, identify } from './auth/guard.ts';
import { accountTokenIdentifier, sessionIdentifier } from './auth/identifiers.ts';
import { accountRoutes } from './auth/routes.ts';
import { AUTH_POLICY_PATH, authPolicy } from '../monitor/auth-policy.ts';
import { WEBMAIL_PATH, webmailCollector } from '../monitor/collector/webmail.ts';
import { auditApi } from './api-audit.ts';
import type { PolicyTable } from '../policy/live.ts';
import type { KnownLogins } from '../monitor/known-logins.ts';
import type { AuditedUsers } from '../monitor/audit/users.ts';
import { mailboxesApi } from './api-mailboxes.ts';
import { alertsApi } from './api-alerts.ts';
import { settingsApi } from './api-settings.ts';
import type { LiveSettings } from '../config/overrides.ts';
import { accountsApi } from './api-accounts.ts';
import { sourcesApi } from './api-sources.ts';
import { queueApi } from './api-queue.ts';

export interface WebDeps {
  config: Config;
  quarantine: QuarantineService;
  signer: LinkSigner;
  db: Kysely<DB>;
  emit: Emit;
  log: Logger;
  /** The live policies and known login addresses, for Dovecot's auth policy requests (monitor.auth_policy). */
  policies?: PolicyTable;
  known?: KnownLogins;
  /** Overrides web.listen (tests use port 0). */
  listen?: { host: string; port: number };
  /** The event sink of this process: the event stream and the metrics subscribe to it. */
  sink?: EventSink;
  /** The trend analyzer, for its lag in the metrics. */
  analyzer?: { stats(): Promise<AnalyzerStats> };
  /** The gateway's analysis threads in this process, if any, for their figures in the metrics. */
  analysisThreads?: () => AnalysisThreadStats | null;
  /** The spool's segment files in this process, if it appends to them, for the metrics. */
  spool?: () => { segments: number; bytes: number; live: number } | null;
  /** Tells every gateway a policy changed (the policy bus); they re-read the table every second in any case. */
  announce?: (change: PolicyChange) => void;
  /** Who is audited in this process (monitor/audit/users.ts): the audit users API reads and reloads it. */
  audited?: AuditedUsers;
  /** The detector settings changed at run time (config/overrides.ts): the detectors API shows and changes them. */
  settings?: LiveSettings;
  /** The config file and data directory this process started with, for the Settings page. */
  configFile?: string;
  dataDir?: string;
}

export interface WebServer {
  host: string;
  port: number;
  /** Where users reach it: web.public_url, or the listening address. */
  url: string;
  close(): Promise<void>;
  /** Every route registered, as "METHOD /path" (HEAD routes left out). */
  routes: string[];
}

/** Bodies are small forms and JSON; nothing legitimate comes near this. */
const BODY_LIMIT = 64 * 1024;

/**
 * No script, no frames, no outside resources: the pages show hostile mail (subjects, senders, text bodies), so a
 * missed escape must still not run anything. No referrer either, so a token in a URL never reaches another site.
 */
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Never a link token in the log (it is a credential until it expires): /q/TOKEN is logged as /q/…. */
const scrub = (s: string) => s.replace(/\/q\/[^\s'"?]*/g, '/q/…');

const isApi = (req: FastifyRequest) => req.url.startsWith('/api/');

/** Codes for the statuses fastify itself answers with. */
const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'not_held',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

export async function startWeb(deps: WebDeps): Promise<WebServer> {
  const log = deps.log;
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // A token is up to 2048 characters (tokens.ts); longer is refused as not a link, not as a missing route.
    routerOptions: { maxParamLength: 2100 },
    return503OnClosing: true,
    // A client that trickles its request in is cut off (slowloris); every legitimate request here is small.
    requestTimeout: 30_000,
    // A malformed URL (bad percent-encoding) is the client's error, answered like any other.
    frameworkErrors: (err, req, reply) => sendError(err as FastifyError, req, reply),
  });
  await app.register(formbody, { bodyLimit: BODY_LIMIT });
  await app.register(cookie);
  // An empty JSON body is taken as {}: `POST /api/v1/quarantine/ID/release` needs none, and clients that always set
  // the content type should not get a 400 for it.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) => {
    const text = String(body).trim();
    if (!text) return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new WebError(400, 'bad_request', `the body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  // Also called by sendError: fastify's answers to malformed URLs skip the onSend hooks.
  function secure(req: FastifyRequest, reply: FastifyReply) {
    reply.header('content-security-policy', CSP);
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cross-origin-opener-policy', 'same-origin');
    // Every answer but the stylesheet is about one person's mail or carries a token: no cache may keep it.
    if (req.url !== CSS_PATH) reply.header('cache-control', 'no-store');
  }
  app.addHook('onSend', async (req, reply, payload) => {
    secure(req, reply);
    return payload;
  });

  function sendError(err: FastifyError | WebError, req: FastifyRequest, reply: FastifyReply) {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    const code = err instanceof WebError ? err.code : (CODES[status] ?? 'internal');
    const where = `${req.method} ${scrub(req.url.replace(/\?.*$/, ''))}`;
    if (status >= 500) log.error({ err: scrub(err.message), where }, 'web request failed');
    else log.warn({ err: scrub(err.message), where, ip: req.ip, status }, 'web request refused');
    secure(req, reply);
    const message = status >= 500 ? 'internal error; the details are in the server log' : err.message;
    if (isApi(req)) return reply.code(status).type('application/json').send({ error: { code, message } });
    return reply.code(status).type('text/html; charset=utf-8').send(notice(status >= 500 ? 'Something went wrong' : 'Request refused', message));
  }
  app.setErrorHandler((err: FastifyError | WebError, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((req, reply) => {
    const msg = `no such page: ${req.method} ${req.url.replace(/\?.*$/, '').slice(0, 200)}`;
    if (isApi(req)) return reply.code(404).send({ error: { code: 'not_found', message: msg } });
    if (req.url.startsWith('/q/')) {
      return reply.code(400).type('text/html; charset=utf-8').send(notice('This is not a valid quarantine link', 'The link is too long or was changed. Open it again from your latest quarantine digest.'));
    }
    return reply.code(404).type('text/html; charset=utf-8').send(notice('Not found', 'There is no page at this address.'));
  });

  // The routes as registered, for the OpenAPI document's test.
  const routes: string[] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push(`${m} ${r.url.replace(/(.)\/$/, '$1')}`);
  });
  // Who is asking, for every route that says which roles may use it (auth/guard.ts).
  identify(app, [configTokenIdentifier(deps.config), sessionIdentifier(deps.db, deps.config.web.session_hours), accountTokenIdentifier(deps.db)]);
  app.get(CSS_PATH, async (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(CSS));
  // A signed-in account goes to the center; a recipient without one to the quarantine's own page.
  app.get('/', async (req, reply) => reply.redirect(req.principal?.kind === 'session' ? `${UI_PATH}/` : '/quarantine', 303));
  await app.register(quarantinePages, { ...deps });
  await app.register(centerUi, { ...deps });
  await app.register(accountRoutes, { ...deps });
  await app.register(quarantineApi, { ...deps, prefix: '/api/v1/quarantine' });
  await app.register(clustersApi, { ...deps, prefix: '/api/v1/clusters' });
  if (deps.config.monitor.auth_policy.enabled) await app.register(authPolicy, { ...deps, prefix: AUTH_POLICY_PATH });
  if (deps.config.monitor.webmail.enabled) await app.register(webmailCollector, { ...deps, prefix: WEBMAIL_PATH });
  await app.register(auditApi, { ...deps, prefix: '/api/v1/audit' });
  await app.register(mailboxesApi, { ...deps, prefix: '/api/v1/mailboxes' });
  await app.register(alertsApi, { ...deps, prefix: '/api/v1/alerts' });
  await app.register(settingsApi, { ...deps, prefix: '/api/v1' });
  await app.register(accountsApi, { ...deps, prefix: '/api/v1' });
  await app.register(sourcesApi, { ...deps, prefix: '/api/v1/sources' });
  await app.register(messagesApi, { ...deps, prefix: '/api/v1/messages' });
  await app.register(queueApi, { ...deps, prefix: '/api/v1/queue' });
  await app.register(policiesApi, { ...deps, prefix: '/api/v1/policies' });
  await app.register(eventsApi, { ...deps, prefix: '/api/v1' });
  await app.register(openApiRoute, { ...deps });
  if (deps.config.web.metrics.enabled) await app.register(metricsRoute, { ...deps });

  const want = deps.listen ?? splitListen(deps.config.web.listen);
  await app.listen({ host: want.host, port: want.port });
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : want;
  return {
    ...bound,
    url: publicBase(deps.config, bound),
    routes: [...new Set(routes)],
    close: () => app.close(),
  };
}

