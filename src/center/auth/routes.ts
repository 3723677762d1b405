// Signing in and out of the center: the form at /login for browsers, /api/v1/session for scripts and the dashboard,
// /logout. Failed attempts are limited per name and per client address, and every attempt is an event (never with
// the password).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { WebDeps } from '../server.ts';
import { WebError } from '../web-error.ts';
import { notice } from '../html.ts';
import { getAccount } from './accounts.ts';
import { needRole, type Principal, type Role } from './guard.ts';
import { loginPage, signedInPage } from './pages.ts';
import { MAX_PASSWORD, verifyNobody, verifyPassword } from './password.ts';
import { LoginLimiter } from './rate-limit.ts';
import { csrfOk } from './secrets.ts';
import { createSession, endSession, SESSION_COOKIE } from './sessions.ts';

const ANY: Role[] = ['admin', 'auditor', 'user'];

const Credentials = z.strictObject({
  name: z.string().min(1).max(200),
  password: z.string().min(1).max(MAX_PASSWORD),
});
const LoginForm = z.object({
  name: z.string().max(200).default(''),
  password: z.string().max(MAX_PASSWORD).default(''),
  next: z.string().max(500).optional(),
});

/** Where a form sign-in may go next: a path on this server, never "//host" or "/\host" (open redirects). */
const safeNext = (s: string | undefined) => (s && /^\/(?![/\\])[\x21-\x7e]*$/.test(s) ? s : undefined);

type Outcome = { ok: true; principal: Principal; csrf: string; cookie: string; expiresAt: number } | { ok: false; status: 401 | 429; message: string; retryAfter?: number };

export const accountRoutes: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db, config, emit, log } = deps;
  const limiter = new LoginLimiter();
  const ttl = config.web.session_hours * 3_600_000;
  const publicHost = config.web.public_url ? new URL(config.web.public_url).host : undefined;

  async function attempt(req: FastifyRequest, rawName: string, password: string, via: 'form' | 'api'): Promise<Outcome> {
    const name = rawName.trim().toLowerCase().slice(0, 100);
    const ip = req.ip;
    const failed = (reason: string) => emit('web.login_failed', { ip, data: { name, reason, via, ip } });
    const wait = limiter.retryAfter(name, ip);
    if (wait > 0) {
      failed('rate_limited');
      log.warn({ name, ip, via, retry_after_s: wait }, 'center sign-in refused: too many failures');
      return { ok: false, status: 429, retryAfter: wait, message: `too many failed sign-ins; try again in ${wait > 90 ? `${Math.ceil(wait / 60)} minutes` : `${wait} seconds`}` };
    }
    const account = await getAccount(db, name);
    const right = account ? await verifyPassword(account.password_hash, password) : await verifyNobody(password);
    if (!account || !right || account.disabled) {
      limiter.fail(name, ip);
      failed(!account ? 'unknown' : !right ? 'password' : 'disabled');
      // One answer for all three: which names exist is not told.
      return { ok: false, status: 401, message: 'wrong name or password' };
    }
    limiter.succeed(name);
    const s = await createSession(db, account.name, ttl);
    emit('web.login', { ip, data: { name: account.name, role: account.role, via, ip } });
    return { ok: true, principal: { kind: 'session', name: account.name, role: account.role, addresses: account.addresses, csrf: s.csrf }, csrf: s.csrf, cookie: s.id, expiresAt: s.expiresAt };
  }

  function setCookie(req: FastifyRequest, reply: FastifyReply, value: string) {
    const secure = req.protocol === 'https' || config.web.public_url.startsWith('https:');
    // No Expires: the server's idle expiry decides, and closing the browser ends it sooner.
    reply.setCookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', secure, path: '/' });
  }

  /** A sign-in made before this one on the same browser ends with it. */
  async function endOld(req: FastifyRequest) {
    const old = req.cookies[SESSION_COOKIE];
    if (old) await endSession(db, old);
  }

  /** A form posted from another site (login CSRF); clients that send neither header are let through. */
  function crossSite(req: FastifyRequest): boolean {
    if (req.headers['sec-fetch-site'] === 'cross-site') return true;
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    try {
      const host = new URL(origin).host;
      return host !== req.headers.host && host !== publicHost;
    } catch {
      return true;
    }
  }

  const html = (reply: FastifyReply, status: number, body: string) => reply.code(status).type('text/html; charset=utf-8').send(body);

  app.get<{ Querystring: Record<string, unknown> }>('/login', async (req, reply) => {
    const p = req.principal;
    if (p?.kind === 'session') return html(reply, 200, signedInPage(p));
    return html(reply, 200, loginPage({ next: safeNext(typeof req.query.next === 'string' ? req.query.next : undefined) }));
  });

  app.post('/login', async (req, reply) => {
    const form = LoginForm.safeParse(req.body ?? {});
    if (!form.success) return html(reply, 400, loginPage({ error: 'The form was incomplete. Enter your name and password.' }));
    const next = safeNext(form.data.next);
    if (crossSite(req)) return html(reply, 403, notice('Request refused', 'The sign-in form was sent from another site. Open the sign-in page of this server and sign in there.'));
    if (!form.data.name || !form.data.password) return html(reply, 400, loginPage({ next, name: form.data.name, error: 'Enter your name and password.' }));
    const r = await attempt(req, form.data.name, form.data.password, 'form');
    if (!r.ok) {
      if (r.retryAfter) reply.header('retry-after', String(r.retryAfter));
      return html(reply, r.status, loginPage({ next, name: form.data.name, error: `Not signed in: ${r.message}.` }));
    }
    await endOld(req);
    setCookie(req, reply, r.cookie);
    return reply.redirect(next ?? '/login', 303);
  });

  app.post('/logout', async (req, reply) => {
    const p = req.principal;
    if (p?.kind === 'session' && !csrfOk(req, p.csrf ?? '')) return html(reply, 403, notice('Request refused', 'The form was out of date. Reload the page and try again.'));
    await endOld(req);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return html(reply, 200, notice('Signed out', 'You are signed out of the center.', 'flash'));
  });

  app.post('/api/v1/session', async (req, reply) => {
    // A form on another site can post here too (login CSRF: the victim signed in as the attacker).
    if (crossSite(req)) throw new WebError(403, 'forbidden', 'a sign-in sent from another site is refused');
    const c = Credentials.safeParse(req.body ?? {});
    if (!c.success) throw new WebError(400, 'bad_request', 'expected a JSON body {"name": "...", "password": "..."}');
    const r = await attempt(req, c.data.name, c.data.password, 'api');
    if (!r.ok) {
      if (r.retryAfter) reply.header('retry-after', String(r.retryAfter));
      return reply.code(r.status).send({ error: { code: r.status === 429 ? 'rate_limited' : 'unauthorized', message: r.message } });
    }
    await endOld(req);
    setCookie(req, reply, r.cookie);
    const p = r.principal;
    return { name: p.name, role: p.role, addresses: p.addresses ?? [], csrf: r.csrf, expires_at: r.expiresAt };
  });

  app.get('/api/v1/session', { preHandler: needRole(...ANY) }, async (req) => {
    const p = req.principal!;
    return { name: p.name, role: p.role, kind: p.kind, addresses: p.addresses ?? [], ...(p.kind === 'session' ? { csrf: p.csrf } : {}) };
  });

  app.delete('/api/v1/session', { preHandler: needRole(...ANY) }, async (req, reply) => {
    const ended = req.principal!.kind === 'session';
    if (ended) await endOld(req);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ended };
  });
};
