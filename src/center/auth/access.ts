// What the API plugins ask of a principal: may it come in, who it is in the records, and which mail is its own.
import type { preHandlerAsyncHookHandler } from 'fastify';
import type { Config } from '../../config/schema.ts';
import { resolveSecret } from '../../config/load.ts';
import { WebError } from '../web-error.ts';
import { bearer, needRole, type Principal, type Role } from './guard.ts';

/**
 * needRole, with a 401 that says what to fix: an unknown bearer on a server without web.api_token is most often
 * a script written for that token.
 */
export function allow(config: Config, ...roles: Role[]): preHandlerAsyncHookHandler {
  const check = needRole(...roles);
  const configured = Boolean(resolveSecret(config.web.api_token));
  return async function (this: unknown, req, reply) {
    try {
      await check.call(this as never, req, reply);
    } catch (err) {
      if (err instanceof WebError && err.statusCode === 401 && !configured && bearer(req)) {
        throw new WebError(401, 'unauthorized', 'wrong or expired token (web.api_token is not set in the configuration; accounts get tokens with postern user token)');
      }
      throw err;
    }
  };
}

/** Who did it, in the records (acted_by, events): "api" for web.api_token, "ROLE:NAME" for an account. */
export const actorOf = (p: Principal): string => (p.kind === 'config-token' ? p.name : `${p.role}:${p.name}`);

/** Whether a principal may see mail for this recipient: admins and auditors all of it, a user its own addresses. */
export function mayRead(p: Principal, rcpt: string): boolean {
  if (p.role !== 'user') return true;
  return (p.addresses ?? []).includes(rcpt.toLowerCase());
}
