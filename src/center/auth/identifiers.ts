// The accounts' ways in, as identifiers for guard.ts: a sign-in session cookie and an account's own API token.
// Both read the account on every request, so a removed or disabled account, a new role or new addresses take
// effect at once.
import type { Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import { accountOfToken } from './accounts.ts';
import { bearer, type Identifier } from './guard.ts';
import { looksLikeApiToken } from './secrets.ts';
import { SESSION_COOKIE, useSession } from './sessions.ts';

/** last_used_at is written at most this often per token. */
const TOKEN_TOUCH_MS = 60_000;

export function sessionIdentifier(db: Kysely<DB>, idleHours = 12): Identifier {
  const ttl = idleHours * 3_600_000;
  return async (req) => {
    const cookie = req.cookies?.[SESSION_COOKIE];
    if (!cookie) return undefined;
    const s = await useSession(db, cookie, ttl);
    if (!s) return undefined;
    return { kind: 'session', name: s.account.name, role: s.account.role, addresses: s.account.addresses, csrf: s.csrf };
  };
}

export function accountTokenIdentifier(db: Kysely<DB>): Identifier {
  return async (req) => {
    const b = bearer(req);
    if (!b || !looksLikeApiToken(b)) return undefined;
    const now = Date.now();
    const found = await accountOfToken(db, b, now);
    if (!found) return undefined;
    if (found.lastUsed === null || now - found.lastUsed >= TOKEN_TOUCH_MS) {
      await db.updateTable('account_tokens').set({ last_used_at: now }).where('id', '=', found.tokenId).execute();
    }
    const a = found.account;
    return { kind: 'token', name: a.name, role: a.role, addresses: a.addresses };
  };
}
