// Link tokens: round trip, every altered byte refused, expiry, key rules, and the generated key file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinkSigner, TokenError, linkKey, linkSigner, type LinkClaims } from './tokens.ts';

const KEY = Buffer.alloc(32, 7);
const claims = (over: Partial<LinkClaims> = {}) => ({ action: 'release' as const, qid: '01ABC.ann@example.com', rcpt: 'ann@example.com', exp: Date.now() + 3_600_000, ...over });

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof TokenError) return err.reason;
    throw err;
  }
  return 'accepted';
}

describe('LinkSigner', () => {
  it('verifies what it signed and returns the claims', () => {
    const s = new LinkSigner(KEY);
    const c = claims();
    const t = s.sign(c);
    expect(t).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(s.verify(t)).toEqual({ ...c, nonce: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/) });
    // Each token gets its own nonce: two links for one action are two single-use tokens.
    expect(s.verify(s.sign(c)).nonce).not.toBe(s.verify(t).nonce);
    expect(new LinkSigner(KEY).verify(t).qid).toBe(c.qid);
  });

  it('refuses every single-character change of a token, in the body and in the MAC', () => {
    const s = new LinkSigner(KEY);
    const t = s.sign(claims());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    let tried = 0;
    for (let i = 0; i < t.length; i++) {
      for (const ch of alphabet) {
        if (ch === t[i]) continue;
        const altered = t.slice(0, i) + ch + t.slice(i + 1);
        const r = failure(() => s.verify(altered));
        expect([i, ch, r]).not.toEqual([i, ch, 'accepted']);
        tried++;
      }
    }
    expect(tried).toBe(t.length * (alphabet.length - 1));
  });

  it('refuses truncation, extension, case changes and tokens of another key', () => {
    const s = new LinkSigner(KEY);
    const t = s.sign(claims());
    expect(failure(() => s.verify(t.slice(0, -1)))).toBe('malformed');
    expect(failure(() => s.verify(t + 'A'))).toBe('malformed');
    expect(failure(() => s.verify(t.toUpperCase()))).not.toBe('accepted');
    expect(failure(() => s.verify(''))).toBe('malformed');
    expect(failure(() => s.verify('x'.repeat(5000)))).toBe('malformed');
    expect(failure(() => new LinkSigner(Buffer.alloc(32, 8)).verify(t))).toBe('forged');
  });

  it('refuses an expired token, past a small clock skew', () => {
    const s = new LinkSigner(KEY);
    const now = Date.now();
    const t = s.sign(claims({ exp: now - 5 * 60_000 }));
    expect(failure(() => s.verify(t, now))).toBe('expired');
    const fresh = s.sign(claims({ exp: now + 1000 }));
    expect(failure(() => s.verify(fresh, now))).toBe('accepted');
    expect(failure(() => s.verify(fresh, now + 24 * 3_600_000))).toBe('expired');
  });

  it('refuses keys shorter than 32 bytes', () => {
    expect(() => new LinkSigner(Buffer.alloc(31))).toThrow(/at least 32 bytes/);
    expect(() => linkKey(os.tmpdir(), 'short secret')).toThrow(/quarantine.link_secret must be at least 32 characters/);
  });

  it('keeps honouring a previous key after a rotation, until it is removed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-key-'));
    const a = 'a'.repeat(32);
    const b = 'b'.repeat(32);
    const old = linkSigner(dir, a).sign(claims());
    expect(linkSigner(dir, b, [a]).verify(old).rcpt).toBe('ann@example.com');
    expect(failure(() => linkSigner(dir, b).verify(old))).toBe('forged');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('linkKey', () => {
  it('generates a key once under data_dir/keys and reads the same key afterwards', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-key-'));
    const file = path.join(dir, 'keys', 'quarantine.key');
    const k1 = linkKey(dir, undefined);
    expect(k1.length).toBe(32);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const k2 = linkKey(dir, undefined);
    expect(k2.equals(k1)).toBe(true);
    // Links signed before a restart still verify after it.
    const t = new LinkSigner(k1).sign(claims());
    expect(new LinkSigner(linkKey(dir, undefined)).verify(t).qid).toBe('01ABC.ann@example.com');
    // A configured secret wins over the file.
    expect(linkKey(dir, 's'.repeat(40)).toString()).toBe('s'.repeat(40));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
