// The center's accounts and their API tokens in the store: who may sign in, with which role, and for a user
// account which mail addresses it answers for. `postern user` and the sign-in routes share these functions.
import type { Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import type { Role } from './guard.ts';
import { hashPassword } from './password.ts';
import { digestHex, newApiToken } from './secrets.ts';

export const ROLES: readonly Role[] = ['admin', 'auditor', 'user'];

export interface Account {
  name: string;
  role: Role;
  addresses: string[];
  created_at: number;
  disabled: boolean;
}

export interface TokenInfo {
  id: string;
  account: string;
  label: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
}

export class AccountError extends Error {
  override name = 'AccountError';
  constructor(
    readonly code: 'not_found' | 'exists' | 'bad_request',
    message: string,
  ) {
    super(message);
  }
}

const NAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
const ADDRESS = /^[^\s@"<>()\\,;:]{1,64}@[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)+$/;
const WILDCARD = /^\*@[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)+$/;

/** A name as stored: lower case; refused when it could be mistaken in a log line or a URL. */
export function accountName(text: string): string {
  const n = text.trim().toLowerCase();
  if (!NAME.test(n)) throw new AccountError('bad_request', `account name "${text.slice(0, 80)}" is not 1 to 64 letters, digits, ".", "_", "@" or "-" (starting with a letter or digit)`);
  return n;
}

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

/**
 * The addresses an account answers for, lower case and without repeats. A user account's are single mailboxes: a
 * "*@domain" would show it everyone's quarantine in that domain, which is what an auditor is for.
 */
export function accountAddresses(role: Role, list: readonly string[]): string[] {
  const out = new Set<string>();
  for (const raw of list) {
    const a = raw.trim().toLowerCase();
    if (WILDCARD.test(a)) {
      if (role === 'user') throw new AccountError('bad_request', `"${raw}": a user account has single addresses, not a whole domain (the auditor role reads every mailbox)`);
    } else if (!ADDRESS.test(a)) throw new AccountError('bad_request', `"${raw.slice(0, 120)}" is not a mail address such as ann@example.com`);
    out.add(a);
  }
  return [...out];
}

type AccountRow = DB['accounts'];

function toAccount(r: Pick<AccountRow, 'name' | 'role' | 'addresses' | 'created_at' | 'disabled'>): Account {
  let addresses: string[] = [];
  try {
    const v = JSON.parse(r.addresses) as unknown;
    if (Array.isArray(v)) addresses = v.filter((x): x is string => typeof x === 'string');
  } catch {
    // A damaged row reads as no addresses: it then sees nothing, which is the safe side.
  }
  return { name: r.name, role: isRole(r.role) ? r.role : 'user', addresses, created_at: Number(r.created_at), disabled: Number(r.disabled) === 1 };
}

export async function createAccount(db: Kysely<DB>, a: { name: string; role: Role; password: string; addresses?: readonly string[] }, now = Date.now()): Promise<Account> {
  const name = accountName(a.name);
  const addresses = accountAddresses(a.role, a.addresses ?? []);
  if (await db.selectFrom('accounts').select('name').where('name', '=', name).executeTakeFirst()) {
    throw new AccountError('exists', `an account "${name}" already exists`);
  }
  const password_hash = await hashPassword(a.password);
  await db.insertInto('accounts').values({ name, role: a.role, password_hash, addresses: JSON.stringify(addresses), created_at: now, disabled: 0 }).execute();
  return { name, role: a.role, addresses, created_at: now, disabled: false };
}

export async function getAccount(db: Kysely<DB>, name: string): Promise<(Account & { password_hash: string }) | undefined> {
  const r = await db.selectFrom('accounts').selectAll().where('name', '=', name.trim().toLowerCase()).executeTakeFirst();
  return r && { ...toAccount(r), password_hash: r.password_hash };
}

export async function listAccounts(db: Kysely<DB>): Promise<(Account & { tokens: number; sessions: number })[]> {
  const rows = await db.selectFrom('accounts').select(['name', 'role', 'addresses', 'created_at', 'disabled']).orderBy('name').execute();
  const tokens = await db.selectFrom('account_tokens').select(['account', ({ fn }) => fn.countAll<number>().as('n')]).groupBy('account').execute();
  const sessions = await db
    .selectFrom('web_sessions')
    .select(['account', ({ fn }) => fn.countAll<number>().as('n')])
    .where('expires_at', '>', Date.now())
    .groupBy('account')
    .execute();
  const count = (list: { account: string; n: number }[], name: string) => Number(list.find((t) => t.account === name)?.n ?? 0);
  return rows.map((r) => ({ ...toAccount(r), tokens: count(tokens, r.name), sessions: count(sessions, r.name) }));
}

async function must(db: Kysely<DB>, name: string): Promise<string> {
  const n = name.trim().toLowerCase();
  if (!(await db.selectFrom('accounts').select('name').where('name', '=', n).executeTakeFirst())) throw new AccountError('not_found', `no account "${name.slice(0, 80)}" (postern user list shows them)`);
  return n;
}

/** A new password ends the account's sessions: whoever knew the old one is signed out. */
export async function setPassword(db: Kysely<DB>, name: string, password: string): Promise<void> {
  const n = await must(db, name);
  const password_hash = await hashPassword(password);
  await db.transaction().execute(async (tx) => {
    await tx.updateTable('accounts').set({ password_hash }).where('name', '=', n).execute();
    await tx.deleteFrom('web_sessions').where('account', '=', n).execute();
  });
}

export async function setDisabled(db: Kysely<DB>, name: string, disabled: boolean): Promise<void> {
  const n = await must(db, name);
  await db.transaction().execute(async (tx) => {
    await tx.updateTable('accounts').set({ disabled: disabled ? 1 : 0 }).where('name', '=', n).execute();
    if (disabled) await tx.deleteFrom('web_sessions').where('account', '=', n).execute();
  });
}

/** Removes an account with its tokens and sessions; both stop working at their next request. */
export async function removeAccount(db: Kysely<DB>, name: string): Promise<void> {
  const n = await must(db, name);
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('account_tokens').where('account', '=', n).execute();
    await tx.deleteFrom('web_sessions').where('account', '=', n).execute();
    await tx.deleteFrom('accounts').where('name', '=', n).execute();
  });
}

/** A new API token for an account: the token is returned once, only its digest is kept. */
export async function createToken(
  db: Kysely<DB>,
  name: string,
  o: { label?: string; ttlDays?: number } = {},
  now = Date.now(),
): Promise<{ token: string; info: TokenInfo }> {
  const account = await must(db, name);
  const t = newApiToken();
  const info: TokenInfo = {
    id: t.id,
    account,
    label: (o.label ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 200),
    created_at: now,
    last_used_at: null,
    expires_at: o.ttlDays === undefined ? null : now + o.ttlDays * 86_400_000,
  };
  await db.insertInto('account_tokens').values({ ...info, token_hash: t.hash }).execute();
  return { token: t.token, info };
}

export async function listTokens(db: Kysely<DB>, name?: string): Promise<TokenInfo[]> {
  let q = db.selectFrom('account_tokens').select(['id', 'account', 'label', 'created_at', 'last_used_at', 'expires_at']).orderBy('account').orderBy('created_at');
  if (name !== undefined) q = q.where('account', '=', name.trim().toLowerCase());
  const rows = await q.execute();
  return rows.map((r) => ({ ...r, created_at: Number(r.created_at), last_used_at: r.last_used_at === null ? null : Number(r.last_used_at), expires_at: r.expires_at === null ? null : Number(r.expires_at) }));
}

export async function revokeToken(db: Kysely<DB>, id: string): Promise<TokenInfo> {
  const r = await db.selectFrom('account_tokens').select(['id', 'account', 'label', 'created_at', 'last_used_at', 'expires_at']).where('id', '=', id.trim()).executeTakeFirst();
  if (!r) throw new AccountError('not_found', `no token "${id.slice(0, 80)}" (postern user list --json shows the ids)`);
  await db.deleteFrom('account_tokens').where('id', '=', r.id).execute();
  return { ...r, created_at: Number(r.created_at), last_used_at: r.last_used_at === null ? null : Number(r.last_used_at), expires_at: r.expires_at === null ? null : Number(r.expires_at) };
}

/** The account an API token belongs to, when the token is known, unexpired and its account enabled. */
export async function accountOfToken(db: Kysely<DB>, token: string, now = Date.now()): Promise<{ account: Account; tokenId: string; lastUsed: number | null } | undefined> {
  const r = await db
    .selectFrom('account_tokens as t')
    .innerJoin('accounts as a', 'a.name', 't.account')
    .select(['t.id as token_id', 't.expires_at', 't.last_used_at', 'a.name', 'a.role', 'a.addresses', 'a.created_at', 'a.disabled'])
    .where('t.token_hash', '=', digestHex(token))
    .executeTakeFirst();
  if (!r || Number(r.disabled) === 1) return undefined;
  if (r.expires_at !== null && Number(r.expires_at) <= now) return undefined;
  return { account: toAccount(r), tokenId: r.token_id, lastUsed: r.last_used_at === null ? null : Number(r.last_used_at) };
}

/** How many admin accounts may sign in: the center's guard rails keep at least one. */
export async function enabledAdmins(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('accounts')
    .select(({ fn }) => fn.countAll<number>().as('n'))
    .where('role', '=', 'admin')
    .where('disabled', '=', 0)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}
