// Signed quarantine links: HMAC-SHA256 over (action, quarantine id, recipient, expiry, nonce) with a server key.
//
// Written here rather than taken from a JWT library: the token is five fields and one MAC, and a general token
// format would bring algorithm negotiation ("alg": "none") that a link in an email must never have.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';

/** view: open the recipient's own quarantine page; session: that page's cookie. */
export const LINK_ACTIONS = ['release', 'delete', 'allow', 'block', 'view', 'session'] as const;
export type LinkAction = (typeof LINK_ACTIONS)[number];

/** Actions a token allows once: a second use is refused. */
export const SINGLE_USE: ReadonlySet<LinkAction> = new Set(['release', 'delete']);

export interface LinkClaims {
  action: LinkAction;
  /** The quarantine entry; "*" for view and session, which cover everything held for the recipient. */
  qid: string;
  rcpt: string;
  /** Milliseconds since the epoch. */
  exp: number;
  nonce: string;
}

export type TokenFailure = 'malformed' | 'forged' | 'expired';

export class TokenError extends Error {
  override name = 'TokenError';
  constructor(readonly reason: TokenFailure) {
    super(
      reason === 'expired'
        ? 'this link has expired'
        : reason === 'forged'
          ? 'this link was not issued by this server or was altered'
          : 'this link is not a quarantine link',
    );
  }
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const CONTEXT = 'postern-quarantine-link-v1';

/** Clock difference between nodes tolerated at expiry. */
const SKEW_MS = 30_000;

const keyId = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8);

/**
 * Signs with the current key and verifies with it or a previous one: a token names its key (an id derived from
 * it), so a key can be rotated without killing the links already sent, and revoked by dropping it from the list.
 */
export class LinkSigner {
  private readonly kid: string;
  private readonly keys: Map<string, Buffer>;

  constructor(
    private readonly key: Buffer,
    previous: readonly Buffer[] = [],
  ) {
    for (const k of [key, ...previous]) if (k.length < 32) throw new Error('a link key must be at least 32 bytes');
    this.kid = keyId(key);
    this.keys = new Map([...previous, key].map((k) => [keyId(k), k]));
  }

  sign(c: Omit<LinkClaims, 'nonce'> & { nonce?: string }): string {
    const claims: LinkClaims = { ...c, nonce: c.nonce ?? randomBytes(12).toString('base64url') };
    const body = b64(JSON.stringify([this.kid, claims.action, claims.qid, claims.rcpt, claims.exp, claims.nonce]));
    return `${body}.${macWith(this.key, body)}`;
  }

  /** The claims of a token one of the keys signed and that has not expired; throws a TokenError otherwise. */
  verify(token: string, now = Date.now()): LinkClaims {
    if (typeof token !== 'string' || token.length > 2048) throw new TokenError('malformed');
    const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) throw new TokenError('malformed');
    const [, body, mac] = m;
    let fields: unknown;
    try {
      fields = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      fields = undefined;
    }
    // The MAC is checked before anything else the body says is believed; an unknown key id is a forgery too. It is
    // compared as text, not decoded: the last of 43 base64url characters carries two unused bits, so four spellings
    // decode to the same bytes and an altered link would pass.
    const key = Array.isArray(fields) && typeof fields[0] === 'string' ? this.keys.get(fields[0]) : undefined;
    const want = Buffer.from(macWith(key ?? this.key, body), 'ascii');
    const got = Buffer.from(mac, 'ascii');
    const macOk = got.length === want.length && timingSafeEqual(got, want);
    if (!key || !macOk) throw new TokenError(Array.isArray(fields) ? 'forged' : 'malformed');
    if ((fields as unknown[]).length !== 6) throw new TokenError('malformed');
    const [, action, qid, rcpt, exp, nonce] = fields as unknown[];
    if (
      !LINK_ACTIONS.includes(action as LinkAction) ||
      typeof qid !== 'string' ||
      typeof rcpt !== 'string' ||
      typeof exp !== 'number' ||
      typeof nonce !== 'string'
    ) {
      throw new TokenError('malformed');
    }
    if (exp + SKEW_MS <= now) throw new TokenError('expired');
    return { action: action as LinkAction, qid, rcpt, exp, nonce };
  }

  /** A MAC for other values bound to the current key (the CSRF token of a page session). */
  mac(value: string): string {
    return macWith(this.key, value);
  }
}

function macWith(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(CONTEXT).update('\0').update(value).digest('base64url');
}

/** The signer of this installation: the configured secrets, or a random key generated once under data_dir/keys/. */
export function linkSigner(dataDir: string, secret: string | undefined, previous: readonly string[] = []): LinkSigner {
  previous.forEach((p, i) => {
    if (p.length < 32) throw new Error(`quarantine.link_secret_previous[${i}] must be at least 32 characters`);
  });
  return new LinkSigner(linkKey(dataDir, secret), previous.map((p) => Buffer.from(p, 'utf8')));
}

/** The configured secret, or a random key generated once under data_dir/keys/. */
export function linkKey(dataDir: string, secret: string | undefined): Buffer {
  if (secret !== undefined) {
    if (secret.length < 32) throw new Error('quarantine.link_secret must be at least 32 characters');
    return Buffer.from(secret, 'utf8');
  }
  const file = path.join(dataDir, 'keys', 'quarantine.key');
  try {
    return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  try {
    // wx: of two processes starting at once, one writes and both read the same key.
    fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  }
}

/**
 * Spends a single-use token: true the first time, false when it was used before. The row is kept until the token
 * would have expired anyway (the purge job removes it then).
 */
export async function spendToken(db: Kysely<DB>, c: LinkClaims, now = Date.now()): Promise<boolean> {
  const r = await db
    .insertInto('quarantine_tokens')
    .values({ nonce: c.nonce, action: c.action, quarantine_id: c.qid, used_at: now, expires_at: c.exp })
    .onConflict((oc) => oc.column('nonce').doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
}
