// API tokens and session secrets: only digests are kept, and the CSRF check takes the header or the form field.
import { describe, expect, it } from 'vitest';
import type { FastifyRequest } from 'fastify';
import { csrfOk, digestHex, looksLikeApiToken, newApiToken, sameSecret } from './secrets.ts';

const req = (method: string, headers: Record<string, string> = {}, body?: unknown) => ({ method, headers, body }) as unknown as FastifyRequest;

describe('API tokens', () => {
  it('are random, prefixed, and stored as their SHA-256 only', () => {
    const a = newApiToken();
    const b = newApiToken();
    expect(a.token).toMatch(/^pst_[A-Za-z0-9_-]{43}$/);
    expect(a.id).toMatch(/^tok_[0-9a-f]{12}$/);
    expect(a.token).not.toBe(b.token);
    expect(a.id).not.toBe(b.id);
    expect(a.hash).toBe(digestHex(a.token));
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.hash).not.toContain(a.token.slice(4, 20));
    expect(looksLikeApiToken(a.token)).toBe(true);
    expect(looksLikeApiToken('api-token-for-tests-0123456789abcdef')).toBe(false);
    expect(looksLikeApiToken('pst_short')).toBe(false);
  });

  it('compare in constant time whatever the lengths', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abd')).toBe(false);
    expect(sameSecret('abc', 'abcd')).toBe(false);
    expect(sameSecret('', '')).toBe(true);
  });
});

describe('CSRF check', () => {
  const want = 'csrf-value-0123456789';
  it('lets reads through without a token', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS']) expect(csrfOk(req(m), want)).toBe(true);
  });
  it('needs the header or the form field on every change', () => {
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      expect(csrfOk(req(m), want)).toBe(false);
      expect(csrfOk(req(m, { 'x-csrf-token': want }), want)).toBe(true);
      expect(csrfOk(req(m, {}, { _csrf: want }), want)).toBe(true);
    }
  });
  it('refuses a wrong, empty, or non-string value, and a session without a token', () => {
    expect(csrfOk(req('POST', { 'x-csrf-token': 'csrf-value-0123456788' }), want)).toBe(false);
    expect(csrfOk(req('POST', { 'x-csrf-token': '' }), want)).toBe(false);
    expect(csrfOk(req('POST', {}, { _csrf: [want] }), want)).toBe(false);
    expect(csrfOk(req('POST', {}, [want]), want)).toBe(false);
    expect(csrfOk(req('POST', {}, 'raw text'), want)).toBe(false);
    expect(csrfOk(req('POST', { 'x-csrf-token': '' }), '')).toBe(false);
    // The header wins over the field: a right field does not save a wrong header.
    expect(csrfOk(req('POST', { 'x-csrf-token': 'wrong' }, { _csrf: want }), want)).toBe(false);
  });
});
