// Passwords through argon2id: a round trip, the PHC parameters, and the refusals.
import { describe, expect, it } from 'vitest';
import { hashPassword, PasswordError, verifyNobody, verifyPassword, weakPassword } from './password.ts';

describe('account passwords', () => {
  it('hash with argon2id and verify only the same password', async () => {
    const h = await hashPassword('correct horse battery');
    expect(h).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(h, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(h, 'correct horse batterY')).toBe(false);
    expect(await verifyPassword(h, '')).toBe(false);
    // Salted: the same password hashes differently each time.
    expect(await hashPassword('correct horse battery')).not.toBe(h);
  });

  it('treats composed and decomposed accents as the same password', async () => {
    const h = await hashPassword('caf\u00e9 au lait 42');
    expect(await verifyPassword(h, 'cafe\u0301 au lait 42')).toBe(true);
  });

  it('refuses short, huge and control-character passwords, and never throws on a damaged hash', async () => {
    expect(weakPassword('short')).toMatch(/at least 10/);
    expect(weakPassword('x'.repeat(1025))).toMatch(/at most 1024/);
    expect(weakPassword('long enough\n')).toMatch(/control/);
    expect(weakPassword('long enough pass')).toBeUndefined();
    await expect(hashPassword('short')).rejects.toBeInstanceOf(PasswordError);
    expect(await verifyPassword('not a hash', 'long enough pass')).toBe(false);
    expect(await verifyPassword('$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB', 'long enough pass')).toBe(false);
    expect(await verifyNobody('anything')).toBe(false);
  });
});
