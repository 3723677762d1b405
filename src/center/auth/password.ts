// Account passwords: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), kept as a PHC string so that
// stronger parameters later still verify the hashes made now.
import { Algorithm, hash, verify } from '@node-rs/argon2';

const OPTIONS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const MIN_PASSWORD = 10;
/** argon2 takes any length; a cap keeps one request from costing more than a normal one. */
export const MAX_PASSWORD = 1024;

export class PasswordError extends Error {
  override name = 'PasswordError';
}

/** Why a new password is refused, or undefined when it is fine. */
export function weakPassword(pw: string): string | undefined {
  if ([...pw].length < MIN_PASSWORD) return `a password needs at least ${MIN_PASSWORD} characters`;
  if (pw.length > MAX_PASSWORD) return `a password has at most ${MAX_PASSWORD} characters`;
  if (/[\u0000-\u001f\u007f]/.test(pw)) return 'a password cannot contain control characters (a line break pasted with it?)';
  return undefined;
}

export async function hashPassword(pw: string): Promise<string> {
  const why = weakPassword(pw);
  if (why) throw new PasswordError(why);
  return hash(pw.normalize('NFC'), OPTIONS);
}

/** False for a wrong password and for a hash that is not one (a damaged row must not sign anyone in). */
export async function verifyPassword(stored: string, pw: string): Promise<boolean> {
  if (pw.length > MAX_PASSWORD) return false;
  try {
    return await verify(stored, pw.normalize('NFC'));
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;

/**
 * Spends the time of one verification for a name that has no account, so that the answer's timing does not tell
 * which names exist.
 */
export async function verifyNobody(pw: string): Promise<false> {
  dummy ??= hash('no account has this password', OPTIONS);
  await verifyPassword(await dummy, pw.slice(0, MAX_PASSWORD));
  return false;
}
