// The random values behind accounts' API tokens, session cookies and CSRF tokens, and how they are compared. Only
// SHA-256 digests of tokens and session ids are stored: they are 256-bit random, so a plain digest is enough (no
// salt, no slow hash) and a copy of the store signs nobody in.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** An account's API token: "pst_" + 43 base64url characters; the prefix makes a leaked one easy to scan for. */
export const TOKEN_PREFIX = 'pst_';

export const randomId = (bytes = 32) => randomBytes(bytes).toString('base64url');

export function newApiToken(): { id: string; token: string; hash: string } {
  const token = TOKEN_PREFIX + randomId();
  // The id names the token in lists and for revoking; it is no part of the secret.
  return { id: `tok_${randomBytes(6).toString('hex')}`, token, hash: digestHex(token) };
}

export const looksLikeApiToken = (s: string) => s.startsWith(TOKEN_PREFIX) && /^[A-Za-z0-9_-]{40,80}$/.test(s.slice(TOKEN_PREFIX.length));

export const digestHex = (s: string) => createHash('sha256').update(s).digest('hex');

/** Constant-time equality of two strings of any lengths (compared through their digests). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a request made with a session carries its CSRF token: the x-csrf-token header (scripts, JSON) or the
 * _csrf form field. Reads that change nothing need none. The cookie is SameSite=Strict as well; this is the second
 * line for browsers and proxies that do not honour it.
 */
export function csrfOk(req: FastifyRequest, want: string): boolean {
  if (SAFE_METHODS.has(req.method)) return true;
  const header = req.headers['x-csrf-token'];
  const body = req.body;
  const field = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)._csrf : undefined;
  const got = typeof header === 'string' ? header : typeof field === 'string' ? field : undefined;
  return got !== undefined && want.length > 0 && sameSecret(got, want);
}
