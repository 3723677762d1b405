// The center's accounts under /api/v1/accounts, for admins: list, add, change role, addresses and whether disabled,
// set a password, remove, and each account's API tokens; and /api/v1/me/password, where any signed-in account
// changes its own password with the current one. The same store functions as `postern user`, with the guard rails a
// web page needs: the last enabled admin is never removed, disabled or demoted, and nobody removes, disables or
// demotes the account they are signed in with. Every change is a web.account_changed event.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { z } from 'zod';
import type { DB } from '../store/schema.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';
import { actorOf, allow } from './auth/access.ts';
import { cursor, decodeCursor, limit, page, parse } from './api-query.ts';
import { AccountError, accountAddresses, createAccount, createToken, enabledAdmins, getAccount, listTokens, revokeToken, ROLES, type Account } from './auth/accounts.ts';
import type { Principal, Role } from './auth/guard.ts';
import { hashPassword, MAX_PASSWORD, PasswordError, verifyPassword, weakPassword } from './auth/password.ts';
import { LoginLimiter } from './auth/rate-limit.ts';
import { digestHex } from './auth/secrets.ts';
import { SESSION_COOKIE } from './auth/sessions.ts';

const roleField = z.enum(ROLES as [Role, ...Role[]]);
const password = z.string().min(1).max(MAX_PASSWORD);
const addresses = z.array(z.string().max(320)).max(1000);

export const AccountsQuery = z.strictObject({
  role: roleField.optional().describe('Only accounts of this role.'),
  disabled: z.enum(['true', 'false']).optional().describe('Only disabled (true) or enabled (false) accounts.'),
  limit: limit(100).describe('Items per page, at most 500.'),
  cursor: cursor.describe('next_cursor from the previous page.'),
});

export const AccountBody = z.strictObject({
  name: z.string().min(1).max(200).describe('1 to 64 letters, digits, ".", "_", "@" or "-"; stored in lower case.'),
  role: roleField,
  password: password.describe('At least 10 characters.'),
  addresses: addresses.optional().describe('Mail addresses whose quarantine a user account sees (auditors and admins see all).'),
});

export const AccountPatch = z
  .strictObject({
    role: roleField.optional(),
    addresses: addresses.optional().describe('Replaces the list.'),
    disabled: z.boolean().optional().describe('true: no sign-in, no token works, its sessions end.'),
  })
  .refine((b) => b.role !== undefined || b.addresses !== undefined || b.disabled !== undefined, { message: 'nothing to change: give role, addresses or disabled' });

export const AccountParams = z.strictObject({ name: z.string().min(1).max(200).describe('The account name.') });
export const TokenParams = z.strictObject({
  name: z.string().min(1).max(200).describe('The account name.'),
  id: z.string().regex(/^tok_[0-9a-f]{12}$/, 'expected a token id such as tok_0123456789ab').describe('The token id.'),
});
export const PasswordBody = z.strictObject({ password: password.describe('The new password, at least 10 characters.') });
export const OwnPasswordBody = z.strictObject({
  current_password: password.describe('The password the account signs in with now.'),
  new_password: password.describe('At least 10 characters.'),
});
export const TokenBody = z.strictObject({
  label: z.string().max(200).optional().describe('What the token is for.'),
  ttl_days: z.number().int().min(1).max(99_999).optional().describe('Days until it expires; absent: never.'),
});

/** An account as the list shows it: never its password hash. */
export interface AccountItem extends Account {
  tokens: number;
  sessions: number;
}

function readAddresses(json: string): string[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** The accounts of a page with their token and live session counts. */
async function accountItems(db: Kysely<DB>, q: { role?: Role; disabled?: boolean; after?: string; limit: number; name?: string }): Promise<AccountItem[]> {
  let sel = db.selectFrom('accounts').select(['name', 'role', 'addresses', 'created_at', 'disabled']).orderBy('name').limit(q.limit);
  if (q.name !== undefined) sel = sel.where('name', '=', q.name);
  if (q.role) sel = sel.where('role', '=', q.role);
  if (q.disabled !== undefined) sel = sel.where('disabled', '=', q.disabled ? 1 : 0);
  if (q.after !== undefined) sel = sel.where('name', '>', q.after);
  const rows = await sel.execute();
  if (!rows.length) return [];
  const names = rows.map((r) => r.name);
  const count = async (table: 'account_tokens' | 'web_sessions') => {
    let c = db.selectFrom(table).select(['account', ({ fn }) => fn.countAll<number>().as('n')]).where('account', 'in', names);
    if (table === 'web_sessions') c = c.where('expires_at', '>', Date.now());
    const list = await c.groupBy('account').execute();
    return new Map(list.map((x) => [x.account, Number(x.n)]));
  };
  const [tokens, sessions] = await Promise.all([count('account_tokens'), count('web_sessions')]);
  return rows.map((r) => ({
    name: r.name,
    role: (ROLES as readonly string[]).includes(r.role) ? (r.role as Role) : 'user',
    addresses: readAddresses(r.addresses),
    created_at: Number(r.created_at),
    disabled: Number(r.disabled) === 1,
    tokens: tokens.get(r.name) ?? 0,
    sessions: sessions.get(r.name) ?? 0,
  }));
}

/** The account a principal signs in as; the configured token (web.api_token) is no account. */
const ownName = (p: Principal): string | undefined => (p.kind === 'config-token' ? undefined : p.name);

/** AccountError and PasswordError as the API's errors. */
function asWebError(err: unknown, where: string): never {
  if (err instanceof AccountError) {
    if (err.code === 'not_found') throw new WebError(404, 'not_found', err.message.replace(/ \(postern user [^)]*\)$/, ''));
    if (err.code === 'exists') throw new WebError(409, 'exists', err.message);
    throw new WebError(400, 'bad_request', `${where}: ${err.message}`);
  }
  if (err instanceof PasswordError) throw new WebError(400, 'bad_request', `${where}: ${err.message}`);
  throw err;
}

export const accountsApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { db, emit } = deps;
  const admin = { preHandler: allow(deps.config, 'admin') };
  const anyone = { preHandler: allow(deps.config, 'admin', 'auditor', 'user') };
  // Guesses of the current password through a stolen session are limited like sign-ins.
  const limiter = new LoginLimiter();

  // Changes that could leave no enabled admin run one at a time in this process; the recount inside each
  // transaction is the guard, this keeps two of them from each counting the other's admin.
  let queue: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  function changed(req: FastifyRequest, op: string, account: string, data: Record<string, unknown> = {}): void {
    emit('web.account_changed', { ip: req.ip, data: { op, account, ...data, by: actorOf(req.principal!) } });
  }

  async function must(rawName: string): Promise<Account & { password_hash: string }> {
    const a = await getAccount(db, rawName);
    if (!a) throw new WebError(404, 'not_found', `no account "${rawName.slice(0, 80)}"`);
    return a;
  }

  /** 409 when the change would end the signed-in principal's own way in. */
  function notSelf(req: FastifyRequest, name: string, what: string): void {
    if (ownName(req.principal!) === name) throw new WebError(409, 'self', `you cannot ${what} the account you are signed in with (${name}); another admin can`);
  }

  /** Inside a change's transaction: refuses it when no enabled admin would be left. */
  async function keepAnAdmin(tx: Transaction<DB>, before: Account, what: string): Promise<void> {
    if (before.role !== 'admin' || before.disabled) return;
    if ((await enabledAdmins(tx)) === 0) {
      throw new WebError(409, 'last_admin', `${before.name} is the last enabled admin: add or enable another admin before you ${what} it`);
    }
  }

  /** A new password; ends the account's sessions except, for one's own, the session the change was made with. */
  async function newPassword(req: FastifyRequest, name: string, pw: string): Promise<number> {
    let password_hash: string;
    try {
      password_hash = await hashPassword(pw);
    } catch (err) {
      asWebError(err, 'body password');
    }
    const cookie = ownName(req.principal!) === name && req.principal!.kind === 'session' ? req.cookies[SESSION_COOKIE] : undefined;
    return db.transaction().execute(async (tx) => {
      await tx.updateTable('accounts').set({ password_hash }).where('name', '=', name).execute();
      let del = tx.deleteFrom('web_sessions').where('account', '=', name);
      if (cookie) del = del.where('id', '!=', digestHex(cookie));
      const r = await del.executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  app.get('/accounts', admin, async (req) => {
    const q = parse(AccountsQuery, req.query, 'query');
    const rows = await accountItems(db, {
      role: q.role,
      disabled: q.disabled === undefined ? undefined : q.disabled === 'true',
      after: decodeCursor(q.cursor, 'string'),
      limit: q.limit + 1,
    });
    return { ...page(rows, q.limit, (r) => r.name), limit: q.limit };
  });

  app.get('/accounts/:name', admin, async (req) => {
    const a = await must(parse(AccountParams, req.params, 'path').name);
    return (await accountItems(db, { name: a.name, limit: 1 }))[0];
  });

  app.post('/accounts', admin, async (req, reply) => {
    const b = parse(AccountBody, req.body, 'body');
    let a: Account;
    try {
      a = await createAccount(db, { name: b.name, role: b.role, password: b.password, addresses: b.addresses ?? [] });
    } catch (err) {
      asWebError(err, err instanceof PasswordError ? 'body password' : 'body');
    }
    changed(req, 'added', a.name, { role: a.role, addresses: a.addresses });
    return reply.code(201).send({ ...a, tokens: 0, sessions: 0 });
  });

  app.patch('/accounts/:name', admin, async (req) => {
    const { name } = parse(AccountParams, req.params, 'path');
    const b = parse(AccountPatch, req.body, 'body');
    return oneAtATime(async () => {
      const before = await must(name);
      const role = b.role ?? before.role;
      if (b.role !== undefined && b.role !== 'admin') notSelf(req, before.name, 'take the admin role from');
      if (b.disabled === true) notSelf(req, before.name, 'disable');
      let list = before.addresses;
      try {
        // A new role checks the addresses again: a user account may not keep an auditor's *@domain.
        if (b.addresses !== undefined || b.role !== undefined) list = accountAddresses(role, b.addresses ?? before.addresses);
      } catch (err) {
        asWebError(err, 'body addresses');
      }
      const disabled = b.disabled ?? before.disabled;
      const ended = await db.transaction().execute(async (tx) => {
        await tx.updateTable('accounts').set({ role, addresses: JSON.stringify(list), disabled: disabled ? 1 : 0 }).where('name', '=', before.name).execute();
        if (role !== 'admin' || disabled) await keepAnAdmin(tx, before, role !== 'admin' ? 'demote' : 'disable');
        // Disabling ends its sessions now, not only at their next request.
        if (!disabled || before.disabled) return 0;
        return Number((await tx.deleteFrom('web_sessions').where('account', '=', before.name).executeTakeFirst()).numDeletedRows);
      });
      const what: Record<string, unknown> = {};
      if (role !== before.role) what.role = role;
      if (b.addresses !== undefined || role !== before.role) what.addresses = list;
      if (disabled !== before.disabled) what.disabled = disabled;
      changed(req, disabled && !before.disabled ? 'disabled' : !disabled && before.disabled ? 'enabled' : 'changed', before.name, { ...what, sessions_ended: ended });
      return { ...(await accountItems(db, { name: before.name, limit: 1 }))[0], sessions_ended: ended };
    });
  });

  app.post('/accounts/:name/password', admin, async (req) => {
    const a = await must(parse(AccountParams, req.params, 'path').name);
    const { password } = parse(PasswordBody, req.body, 'body');
    const ended = await newPassword(req, a.name, password);
    changed(req, 'password', a.name, { sessions_ended: ended });
    return { name: a.name, sessions_ended: ended };
  });

  app.delete('/accounts/:name', admin, async (req) => {
    const { name } = parse(AccountParams, req.params, 'path');
    return oneAtATime(async () => {
      const before = await must(name);
      notSelf(req, before.name, 'remove');
      // With its tokens and sessions, as postern user remove: both stop working at their next request.
      await db.transaction().execute(async (tx) => {
        await tx.deleteFrom('account_tokens').where('account', '=', before.name).execute();
        await tx.deleteFrom('web_sessions').where('account', '=', before.name).execute();
        await tx.deleteFrom('accounts').where('name', '=', before.name).execute();
        await keepAnAdmin(tx, before, 'remove');
      });
      changed(req, 'removed', before.name, { role: before.role });
      return { removed: before.name };
    });
  });

  app.get('/accounts/:name/tokens', admin, async (req) => {
    const a = await must(parse(AccountParams, req.params, 'path').name);
    return { items: await listTokens(db, a.name) };
  });

  app.post('/accounts/:name/tokens', admin, async (req, reply) => {
    const a = await must(parse(AccountParams, req.params, 'path').name);
    const b = parse(TokenBody, req.body, 'body');
    const { token, info } = await createToken(db, a.name, { label: b.label, ttlDays: b.ttl_days });
    changed(req, 'token_created', a.name, { token: info.id, label: info.label, expires_at: info.expires_at });
    // The only time the token is told: only its digest is kept.
    return reply.code(201).send({ token, ...info });
  });

  app.delete('/accounts/:name/tokens/:id', admin, async (req) => {
    const p = parse(TokenParams, req.params, 'path');
    const a = await must(p.name);
    // A token of another account is "not found" here: the path names both.
    if (!(await listTokens(db, a.name)).some((t) => t.id === p.id)) throw new WebError(404, 'not_found', `${a.name} has no token ${p.id}`);
    const t = await revokeToken(db, p.id).catch((err) => asWebError(err, 'path id'));
    changed(req, 'token_revoked', a.name, { token: t.id, label: t.label });
    return { revoked: t };
  });

  app.post('/me/password', anyone, async (req, reply) => {
    const p = req.principal!;
    const name = ownName(p);
    if (!name) throw new WebError(403, 'forbidden', 'web.api_token belongs to no account and has no password; change it in the configuration');
    const b = parse(OwnPasswordBody, req.body, 'body');
    const wait = limiter.retryAfter(name, req.ip);
    if (wait > 0) {
      emit('web.password_change_failed', { ip: req.ip, data: { name, reason: 'rate_limited', ip: req.ip } });
      reply.header('retry-after', String(wait));
      throw new WebError(429, 'rate_limited', `too many wrong current passwords; try again in ${wait > 90 ? `${Math.ceil(wait / 60)} minutes` : `${wait} seconds`}`);
    }
    const a = await must(name);
    if (!(await verifyPassword(a.password_hash, b.current_password))) {
      limiter.fail(name, req.ip);
      emit('web.password_change_failed', { ip: req.ip, data: { name, reason: 'password', ip: req.ip } });
      throw new WebError(403, 'wrong_password', 'the current password is wrong; nothing was changed');
    }
    limiter.succeed(name);
    const why = weakPassword(b.new_password);
    if (why) throw new WebError(400, 'bad_request', `body new_password: ${why}`);
    if (b.new_password.normalize('NFC') === b.current_password.normalize('NFC')) throw new WebError(400, 'bad_request', 'body new_password: the same as the current one');
    const ended = await newPassword(req, a.name, b.new_password);
    changed(req, 'password', a.name, { own: true, sessions_ended: ended });
    return { name: a.name, sessions_ended: ended };
  });
};
