// Who is asking: every request to the center gets a principal (or none) before its route runs, and each route says
// which roles may use it. Identification is pluggable: the configured API token (web.api_token, an admin) here;
// accounts, their sessions and their own API tokens add identifiers of their own.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Config } from '../../config/schema.ts';
import { resolveSecret } from '../../config/load.ts';
import { WebError } from '../web-error.ts';
import { csrfOk } from './secrets.ts';

export type Role = 'admin' | 'auditor' | 'user';

export interface Principal {
  /** How it was identified: the configured token, an account's session, an account's API token. */
  kind: 'config-token' | 'session' | 'token';
  /** Account name, or "api" for the configured token. */
  name: string;
  role: Role;
  /** A user account's mail addresses: the quarantine and audit data it may read. */
  addresses?: string[];
  /** A session's CSRF token: every state change made with the session must carry it (auth/secrets.ts csrfOk). */
  csrf?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Finds the principal of a request, or undefined when this identifier does not apply (the next one is asked). */
export type Identifier = (req: FastifyRequest) => Promise<Principal | undefined> | Principal | undefined;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The bearer token of a request, if it has one. */
export function bearer(req: FastifyRequest): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** web.api_token as an admin principal; compared through hashes, so in constant time whatever the lengths. */
export function configTokenIdentifier(config: Config): Identifier {
  const token = resolveSecret(config.web.api_token);
  const want = token ? digest(token) : undefined;
  return (req) => {
    const b = bearer(req);
    if (!b || !want || !timingSafeEqual(digest(b), want)) return undefined;
    return { kind: 'config-token', name: 'api', role: 'admin' };
  };
}

/** Sets req.principal from the first identifier that knows the request. */
export function identify(app: FastifyInstance, identifiers: Identifier[]): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req) => {
    for (const id of identifiers) {
      const p = await id(req);
      if (p) {
        req.principal = p;
        return;
      }
    }
  });
}

/**
 * A preHandler: 401 without a principal, 403 when its role is not one of these, and 403 for a state change made with
 * a session that does not carry the session's CSRF token (bearer tokens are not sent by browsers on their own, so
 * they need none).
 */
export function needRole(...roles: Role[]): preHandlerAsyncHookHandler {
  return async (req) => {
    const p = req.principal;
    if (!p) throw new WebError(401, 'unauthorized', bearer(req) ? 'wrong or expired token' : 'sign in, or send "Authorization: Bearer <token>"');
    if (!roles.includes(p.role)) throw new WebError(403, 'forbidden', `this needs the role ${roles.join(' or ')}; you are ${p.role}`);
    if (p.kind === 'session' && !csrfOk(req, p.csrf ?? '')) {
      throw new WebError(403, 'csrf', 'a change made with a sign-in session needs its CSRF token: the "x-csrf-token" header or the "_csrf" form field');
    }
  };
}
