// The webmail collector, POST /api/v1/collect/webmail on the web server: a webmail installation reports its users'
// logins, failed logins, logouts, messages sent and read. Logins become the auth.* events the proxies emit
// (protocol webmail, the browser's address as the event's ip), so the brute-force detector, account protection and
// the known login addresses work for webmail as for IMAP; each reply says what the live policies say of the user
// and address (allow, block, protect), so the webmail can refuse the login. Audited users' actions join their
// audit trail. Each installation has its own key (monitor.webmail.keys), named in every event it sends.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Config } from '../../config/schema.ts';
import { resolveSecret } from '../../config/load.ts';
import type { Emit } from '../../core/events.ts';
import { connId } from '../../core/ids.ts';
import type { Logger } from '../../core/log.ts';
import type { PolicyTable } from '../../policy/live.ts';
import { addressMatches } from '../../policy/match.ts';
import type { AuditMatcher } from '../audit/users.ts';
import { WebError } from '../../center/web-error.ts';
import { judgeLogin } from '../auth-policy.ts';
import { LoginGuard } from '../guard.ts';
import type { KnownLogins } from '../known-logins.ts';
import { webmailAction } from '../audit/webmail.ts';
import { parseWebmailBody, type WebmailEvent } from './payload.ts';

/** Where the plugin is mounted. */
export const WEBMAIL_PATH = '/api/v1/collect/webmail';

/** A batch of 500 events with long recipient lists is far over the web server's 64 KiB default. */
export const WEBMAIL_BODY_LIMIT = 1024 * 1024;

export interface WebmailDeps {
  config: Config;
  emit: Emit;
  log: Logger;
  policies?: PolicyTable;
  known?: KnownLogins;
  /** Who is audited: the config's and the store's patterns (audit/users.ts); monitor.audit.users alone without it. */
  audited?: AuditMatcher;
}

/** The reply for one event: what the live policies say of its user and address now. */
export interface WebmailResult {
  action: 'allow' | 'block' | 'protect';
  /** The policy behind a block or protect. */
  policy?: string;
  /** A tarpit policy asks the webmail to hold the login this long. */
  delay_ms?: number;
  /** The event's session: the one sent, or, for a login without one, the id Postern gave it. */
  session?: string;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export const webmailCollector: FastifyPluginAsync<WebmailDeps> = async (app, deps) => {
  const { emit, log, policies } = deps;
  const cfg = deps.config.monitor.webmail;
  if (!policies) throw new Error('monitor.webmail needs the live policies; the web server was started without them');
  // No failure delay of Postern's: the webmail answers its users itself (as for Dovecot's auth policy).
  const guard = new LoginGuard(policies, { failureDelayMs: 0, failureDelayMaxMs: 0, failureWindowS: 1 }, deps.known);
  const auditUsers = deps.config.monitor.audit.users;
  const isAudited = (user: string) => (deps.audited ? deps.audited.has(user) : auditUsers.length > 0 && auditUsers.some((p) => addressMatches(p, user)));
  // Hashed so that the comparison is constant-time whatever the lengths; every key is compared, found or not.
  const keys = cfg.keys.map((k) => {
    const key = resolveSecret(k.key);
    if (!key) log.error({ installation: k.name }, 'a monitor.webmail key is empty (its environment variable is unset?): that installation gets 401');
    return { name: k.name, want: key ? digest(key) : null };
  });

  // Before the body is read: a request without a valid key gets 401 whatever it sends.
  const installations = new WeakMap<FastifyRequest, string>();
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new WebError(401, 'unauthorized', 'missing "Authorization: Bearer <key>" header (a key of monitor.webmail.keys)');
    const got = digest(m[1]);
    let name: string | null = null;
    for (const k of keys) if (k.want && timingSafeEqual(got, k.want) && name === null) name = k.name;
    if (name === null) throw new WebError(401, 'unauthorized', 'wrong webmail key');
    installations.set(req, name);
  });

  /** Records one event and says what the live policies say of it. */
  async function take(e: WebmailEvent, source: string): Promise<WebmailResult> {
    const now = Date.now();
    // A time ahead of ours (clock skew, within the hour allowed) is stored as now: the analyzer reads the events of
    // a PostgreSQL store only up to the youngest settled one, and a future event would hold it back.
    const ts = Math.min(e.ts ?? now, now);
    const session = e.session ?? (e.type === 'login' ? connId() : undefined);
    const j = await judgeLogin(guard, log, e.client_ip, e.user);
    const result: WebmailResult = { action: j.action, ...(j.policy ? { policy: j.policy.id } : {}), ...(j.tarpitMs ? { delay_ms: j.tarpitMs } : {}), ...(session ? { session } : {}) };
    const at = { ip: e.client_ip, conn_id: session ?? null, ts };
    // The proxies' login data (guard.ts emitLogin); tls is the proxies' client connection, unknown here.
    const data = { user: e.user, protocol: 'webmail', session: session ?? null, tls: null, source, ...(e.user_agent ? { user_agent: e.user_agent } : {}) };
    const audited = isAudited(e.user);
    const auditData = { user: e.user.toLowerCase(), session: session ?? null, protocol: 'webmail', source };
    if (e.type === 'login') {
      if (j.action !== 'allow') {
        // Postern told the webmail to refuse this login: a failure Postern caused, as the auth-policy endpoint
        // records one (it keeps the detectors counting and never makes an attacker's address known for the user).
        emit('auth.failed', { ...at, data: { ...data, refused_by: j.policy?.id } });
        return result;
      }
      guard.succeeded(e.user, e.client_ip);
      emit('auth.succeeded', { ...at, data: { ...data, ...(j.tarpitMs ? { tarpit_ms: j.tarpitMs } : {}) } });
      if (audited) emit('audit.session', { ...at, data: { ...auditData, phase: 'login', ip: e.client_ip, tls: null, client: null, ...(e.user_agent ? { user_agent: e.user_agent } : {}) } });
      return result;
    }
    if (e.type === 'login_failed') {
      emit('auth.failed', { ...at, data });
      return result;
    }
    const action = webmailAction(e);
    if (audited && action) emit('audit.command', { ...at, data: { ...auditData, ...action } });
    return result;
  }

  app.post('/', { bodyLimit: WEBMAIL_BODY_LIMIT }, async (req) => {
    const source = `webmail:${installations.get(req)}`;
    const parsed = parseWebmailBody(req.body);
    if ('error' in parsed) throw new WebError(400, 'bad_request', parsed.error);
    const results: WebmailResult[] = [];
    for (const e of parsed.events) results.push(await take(e, source));
    return parsed.batch ? { accepted: results.length, results } : { accepted: 1, ...results[0] };
  });
};
