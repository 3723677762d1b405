// Sign-in sessions of the center: a random cookie value whose digest is the row's id, an idle expiry pushed forward
// as the session is used, and a CSRF token that every state change made with the session must carry.
import type { Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import type { Account } from './accounts.ts';
import { getAccount } from './accounts.ts';
import { digestHex, randomId } from './secrets.ts';

export const SESSION_COOKIE = 'postern_session';

/** The expiry is written at most this often while a session is in use, not on every request. */
const TOUCH_MS = 60_000;

export interface Session {
  account: Account;
  csrf: string;
  expiresAt: number;
}

/** Opens a session; the returned id is the cookie's value and is stored nowhere. */
export async function createSession(db: Kysely<DB>, account: string, ttlMs: number, now = Date.now()): Promise<{ id: string; csrf: string; expiresAt: number }> {
  const id = randomId();
  const csrf = randomId();
  const expiresAt = now + ttlMs;
  // Ended sessions of everyone are swept here, at the moment a row is added.
  await db.deleteFrom('web_sessions').where('expires_at', '<=', now).execute();
  await db.insertInto('web_sessions').values({ id: digestHex(id), account, created_at: now, expires_at: expiresAt, csrf }).execute();
  return { id, csrf, expiresAt };
}

/** The live session of a cookie value, its idle expiry pushed forward; undefined when ended, expired or disabled. */
export async function useSession(db: Kysely<DB>, cookie: string, ttlMs: number, now = Date.now()): Promise<Session | undefined> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(cookie)) return undefined;
  const id = digestHex(cookie);
  const row = await db.selectFrom('web_sessions').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || Number(row.expires_at) <= now) return undefined;
  const account = await getAccount(db, row.account);
  if (!account || account.disabled) return undefined;
  let expiresAt = Number(row.expires_at);
  if (now + ttlMs - expiresAt >= TOUCH_MS) {
    expiresAt = now + ttlMs;
    await db.updateTable('web_sessions').set({ expires_at: expiresAt }).where('id', '=', id).execute();
  }
  const { password_hash: _, ...pub } = account;
  return { account: pub, csrf: row.csrf, expiresAt };
}

export async function endSession(db: Kysely<DB>, cookie: string): Promise<void> {
  await db.deleteFrom('web_sessions').where('id', '=', digestHex(cookie)).execute();
}
