// Dovecot's auth-policy protocol (auth_policy_server_url), served on the web server for sites that run no proxy:
// Dovecot asks `?command=allow` before checking a password and Postern answers from the live policies, as the
// proxy's login guard does; Dovecot sends `?command=report` with the outcome and Postern records it as the auth.*
// event the proxy would, so the brute-force detector and the known login addresses work the same way.
// The protocol (Dovecot 2.2.27+, src/auth/auth-policy.c): a JSON object of the attributes configured in
// auth_policy_request_attributes (all strings), plus `success` and `policy_reject` in a report; the answer is
// `{"status": N, "msg": "..."}` where N < 0 refuses, 0 allows and N > 0 holds the login N seconds.
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { resolveSecret } from '../config/load.ts';
import type { Emit, EventType } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { LivePolicy, PolicyTable } from '../policy/live.ts';
import { WebError } from '../center/web-error.ts';
import { LoginGuard } from './guard.ts';
import type { KnownLogins } from './known-logins.ts';

/** Where the plugin is mounted; Dovecot's auth_policy_server_url points here. */
export const AUTH_POLICY_PATH = '/api/v1/dovecot/auth-policy';

export interface AuthPolicyDeps {
  config: Config;
  emit: Emit;
  log: Logger;
  policies?: PolicyTable;
  known?: KnownLogins;
}

/** What `via` says in the events, so that they can be told from the proxy's. */
const VIA = 'dovecot-policy';
/**
 * No message with a refusal: Dovecot sends any `msg` to the client as `NO [ALERT] msg` (a dialog in real clients),
 * which would tell an attacker that a policy, not the password, stopped him. Without one the client gets Dovecot's
 * reply to a wrong password; the policy is in Postern's events.
 */
const REFUSED_MSG = '';

const missing = (what: string, attr: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `missing; add ${attr} to Dovecot's auth_policy_request_attributes` : `expected ${what}`;

const Query = z.looseObject({
  command: z.enum(['allow', 'report'], { error: 'expected command=allow or command=report (Dovecot appends it to auth_policy_server_url)' }),
});

// Loose: the attributes are the administrator's choice (auth_policy_request_attributes); those Postern reads are
// checked, the others are ignored. pwhash is accepted and never read, logged or stored.
const Allow = z.looseObject({
  login: z.string({ error: missing('a string', 'login=%{requested_username}') }).max(320, 'longer than 320 characters'),
  remote: z
    .string({ error: missing("the client's IP address", 'remote=%{rip}') })
    .refine((s) => net.isIP(s) !== 0, "expected the client's IP address (Dovecot's %{rip}); a login without one cannot be judged"),
  protocol: z.string().max(32, 'longer than 32 characters').optional(),
  session_id: z.string().max(128, 'longer than 128 characters').optional(),
});
const Report = Allow.extend({
  success: z.boolean({ error: (iss) => (iss.input === undefined ? 'missing; Dovecot sends it in every report' : 'expected true or false') }),
  policy_reject: z.boolean().default(false),
});
type Attempt = z.infer<typeof Allow>;

/** Parses with zod; a failure is a 400 whose message names each field and what is wrong with it (never its value). */
function parse<T extends z.ZodType>(schema: T, value: unknown, where: 'query' | 'body'): z.infer<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  throw new WebError(400, 'bad_request', r.error.issues.map((i) => `${where}${i.path.length ? ` ${i.path.join('.')}` : ''}: ${i.message}`).join('; '));
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The key a request presents: `Authorization: Bearer KEY` (auth_policy_server_api_header), or the password of
 * basic auth, which Dovecot sends for a URL with user information (http://dovecot:KEY@host/…).
 */
function presented(header: string | undefined): string | undefined {
  const m = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  if (m[1].toLowerCase() === 'bearer') return m[2];
  const pair = Buffer.from(m[2], 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  return colon < 0 ? undefined : pair.slice(colon + 1);
}

interface Decision {
  status: number;
  msg: string;
  /** The policy that refused the login. */
  policy?: LivePolicy;
}

/** What the live policies say of one login, for a login source that is not a proxy (Dovecot here, webmail). */
export interface LoginJudgement {
  /** block: a block policy on the address or user; protect: a protected user from an address never seen for it. */
  action: 'allow' | 'block' | 'protect';
  /** The policy that refused the login. */
  policy?: LivePolicy;
  /** How long a tarpit policy asks to hold an allowed login. */
  tarpitMs: number;
}

/**
 * A login judged as the proxy's login gate judges it: a block refuses; a protect policy on the user refuses an
 * address it never logged in from; when the known addresses cannot be read the login is allowed (the owner is never
 * locked out by a store outage).
 */
export async function judgeLogin(guard: LoginGuard, log: Logger, ip: string, user: string): Promise<LoginJudgement> {
  const d = guard.atLogin(ip, user);
  if (d.refuse) return { action: 'block', policy: d.refuse, tarpitMs: d.tarpitMs };
  if (d.protect && user) {
    let admitted = true;
    try {
      admitted = await guard.admits(user, ip);
    } catch (err) {
      log.warn({ err: (err as Error).message, user, policy: d.protect.id }, 'known login addresses unreadable; this login is allowed as if the user were not protected');
    }
    if (!admitted) return { action: 'protect', policy: d.protect, tarpitMs: d.tarpitMs };
  }
  return { action: 'allow', tarpitMs: d.tarpitMs };
}

export const authPolicy: FastifyPluginAsync<AuthPolicyDeps> = async (app, deps) => {
  const { emit, log, policies } = deps;
  if (!policies) throw new Error('monitor.auth_policy needs the live policies; the web server was started without them');
  // Dovecot has its own failure delay and penalty, so Postern adds none here (failureDelayMs 0).
  const guard = new LoginGuard(policies, { failureDelayMs: 0, failureDelayMaxMs: 0, failureWindowS: 1 }, deps.known);
  // Hashed so that the comparison is constant-time whatever the lengths.
  const key = resolveSecret(deps.config.monitor.auth_policy.api_key);
  const want = key ? digest(key) : undefined;
  if (!want) log.error('monitor.auth_policy.api_key is empty (its environment variable is unset?): every Dovecot auth policy request gets 401');

  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (!want) throw new WebError(401, 'unauthorized', 'monitor.auth_policy.api_key is empty in the configuration');
    const got = presented(req.headers.authorization);
    if (got === undefined) throw new WebError(401, 'unauthorized', 'missing "Authorization: Bearer <monitor.auth_policy.api_key>" header (Dovecot\'s auth_policy_server_api_header)');
    if (!timingSafeEqual(digest(got), want)) throw new WebError(401, 'unauthorized', 'wrong monitor.auth_policy.api_key');
  });

  /** What the live policies say of a login from `ip` as `user`: the proxy's login guard, answered in Dovecot's terms. */
  async function decide(ip: string, user: string): Promise<Decision> {
    const d = await judgeLogin(guard, log, ip, user);
    if (d.action === 'block' || d.action === 'protect') return { status: -1, msg: REFUSED_MSG, policy: d.policy };
    // Dovecot counts the tarpit in whole seconds.
    if (d.tarpitMs > 0) return { status: Math.ceil(d.tarpitMs / 1000), msg: 'tarpit' };
    return { status: 0, msg: 'ok' };
  }

  /**
   * The outcome Dovecot reports. A login Dovecot refused because Postern said so (policy_reject) is recorded as the
   * proxy records its own refusals, not as a second failure: a block as `<protocol>.login.refused`, a protect as
   * `auth.failed` with refused_by (which keeps the detectors counting the attack and the policy alive).
   */
  async function report(r: Attempt & { success: boolean; policy_reject: boolean }): Promise<void> {
    const user = r.login;
    const protocol = r.protocol || 'unknown';
    const session = r.session_id || undefined;
    const at = { ip: r.remote, conn_id: session ?? null };
    const data = { user, protocol, via: VIA, ...(session ? { session } : {}) };
    if (r.success) {
      guard.succeeded(user, r.remote);
      emit('auth.succeeded', { ...at, data });
      return;
    }
    if (!r.policy_reject) {
      emit('auth.failed', { ...at, data });
      return;
    }
    const p = (await decide(r.remote, user)).policy;
    if (p?.action === 'block' && (protocol === 'imap' || protocol === 'pop3')) {
      emit(`${protocol}.login.refused` satisfies EventType, { ...at, data: { ...data, policy: p.id, target_kind: p.target_kind, reason: p.reason } });
      return;
    }
    // A protect refusal, a block on a protocol with no refusal event of its own, or a policy gone since: a failure
    // Postern caused, marked as such.
    emit('auth.failed', { ...at, data: { ...data, refused_by: p?.id ?? VIA } });
  }

  app.post('/', async (req) => {
    const { command } = parse(Query, req.query, 'query');
    if (command === 'allow') {
      const r = parse(Allow, req.body, 'body');
      const { status, msg } = await decide(r.remote, r.login);
      return { status, msg };
    }
    await report(parse(Report, req.body, 'body'));
    return { status: 0, msg: 'recorded' };
  });
};
