// The auth check's resolver (cache, TTLs, caps, deadline), its bounds on hostile messages, and the
// Authentication-Results field the relay builds from its hits; against a real DNS server (test/harness/dns.ts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { dkimSign } from 'mailauth';
import { startFixtureDns, type FixtureDns } from '../../../../test/harness/dns.ts';
import { silentLogger } from '../../../core/log.ts';
import { prepareCopy, authResultsOf } from '../../../relay/headers.ts';
import type { PhaseInput } from '../../check.ts';
import { buildMessageView } from '../../message-view.ts';
import { Runner } from '../../runner.ts';
import { ScoreTable } from '../../scoring.ts';
import { auth } from './auth.ts';
import { CachingResolver } from './resolver.ts';

const ZONE_FILE = path.join(import.meta.dirname, 'fixtures', 'zone.json');
const bankKey = fs.readFileSync(path.join(import.meta.dirname, 'fixtures', 'keys', 'sel1.bank.example.pem'), 'utf8').replace(/^#.*\n/, '');

let dns: FixtureDns;
let silent: FixtureDns;
beforeAll(async () => {
  dns = await startFixtureDns(ZONE_FILE);
  silent = await startFixtureDns('silent');
});
afterAll(async () => {
  await dns.close();
  await silent.close();
});

async function runAuth(raw: string | Buffer, o: { ip?: string; helo?: string; from?: string; options?: Record<string, unknown>; trusted?: boolean } = {}) {
  const input: PhaseInput = {
    session: { ip: o.ip ?? '192.0.2.10', ourHostname: 'mx.example.com', ourDomains: ['example.com'], trusted: o.trusted ?? false, tls: false, helo: o.helo ?? 'mail.bank.example' },
    envelope: { mailFrom: o.from ?? 'alerts@bank.example', rcptTo: ['alice@example.com'], smtputf8: false, eightBitMime: false },
    message: await buildMessageView(Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1')),
  };
  const runner = new Runner({
    checks: [auth],
    options: new Map([['auth', auth.options!.parse({ dns_servers: [dns.address], ...o.options })]]),
    scores: new ScoreTable([auth], {}),
    timeoutMs: 2_000,
    log: silentLogger,
  });
  const res = await runner.run('data', input);
  return { hits: res.hits, names: res.hits.map((h) => h.name), by: Object.fromEntries(res.hits.map((h) => [h.name, h])) };
}

const MSG = (extra = '') =>
  `${extra}From: "Bank Example" <alerts@bank.example>\r\nTo: alice@example.com\r\nSubject: Statement\r\nDate: Fri, 14 Mar 2025 09:57:41 +0000\r\n` +
  `Message-ID: <a1@bank.example>\r\n\r\nYour statement is ready.\r\n`;

describe('CachingResolver', () => {
  it('answers repeated lookups from its cache and keeps A records no longer than their TTL', async () => {
    const zone = await startFixtureDns({ 'short.example': { A: ['192.0.2.7'], TTL: 1 }, 'txt.example': { TXT: ['v=spf1 -all'] } });
    try {
      const r = new CachingResolver({ servers: [zone.address], timeoutMs: 1_000, cacheTtlS: 300, cacheEntries: 100 });
      const q = r.forRun(Date.now() + 5_000, undefined, { tempFailed: new Set() });
      expect(await q('txt.example', 'TXT')).toEqual([['v=spf1 -all']]);
      expect(await q('TXT.example', 'TXT')).toEqual([['v=spf1 -all']]);
      expect(await q('short.example', 'A')).toEqual(['192.0.2.7']);
      expect(await q('short.example', 'A')).toEqual(['192.0.2.7']);
      expect(zone.queries).toEqual(['txt.example TXT', 'short.example A']);
      await new Promise((res) => setTimeout(res, 1_100));
      await q('short.example', 'A');
      await q('txt.example', 'TXT');
      expect(zone.queries).toEqual(['txt.example TXT', 'short.example A', 'short.example A']);
    } finally {
      await zone.close();
    }
  });

  it('caches "no such name" too, and holds no more entries than its cap', async () => {
    const r = new CachingResolver({ servers: [dns.address], timeoutMs: 1_000, cacheTtlS: 300, cacheEntries: 3 });
    const q = r.forRun(Date.now() + 5_000, undefined, { tempFailed: new Set() });
    const before = dns.queries.length;
    for (let i = 0; i < 6; i++) await expect(q(`n${i}.nowhere.example`, 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(q('n5.nowhere.example', 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(dns.queries.length - before).toBe(6);
    expect(r.size).toBe(3);
  });

  it('never asks for a name DNS cannot carry', async () => {
    const r = new CachingResolver({ servers: [dns.address], timeoutMs: 1_000, cacheTtlS: 300, cacheEntries: 10 });
    const q = r.forRun(Date.now() + 5_000, undefined, { tempFailed: new Set() });
    const before = dns.queries.length;
    await expect(q(`${'a'.repeat(64)}.example`, 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(q('sel 1._domainkey.bank.example', 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(q('x..example', 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(dns.queries.length).toBe(before);
  });

  it('gives up at the deadline with a temporary error, and records which lookups failed', async () => {
    const r = new CachingResolver({ servers: [silent.address], timeoutMs: 5_000, cacheTtlS: 300, cacheEntries: 10 });
    const state = { tempFailed: new Set<string>() };
    const q = r.forRun(Date.now() + 300, undefined, state);
    const t0 = Date.now();
    await expect(q('bank.example', 'TXT')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(1_000);
    await expect(q('other.example', 'TXT')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    expect([...state.tempFailed]).toEqual(['bank.example TXT', 'other.example TXT']);
  });
});

describe('auth check bounds', () => {
  it('finishes inside its budget when DNS never answers, with temporary errors only', async () => {
    const t0 = Date.now();
    const { names } = await runAuth(MSG(), { options: { dns_servers: [silent.address], timeout_ms: 2_000, budget_ms: 700 } });
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(names).toEqual(expect.arrayContaining(['SPF_TEMPERROR', 'DMARC_TEMPERROR']));
    expect(names).not.toContain('CHECK_FAILED');
    expect(names).not.toContain('SPF_FAIL');
  });

  it('verifies only the first max_dkim_signatures signatures of a message that carries hundreds', async () => {
    const msg = MSG();
    const one = { signingDomain: 'bank.example', selector: 'sel1', privateKey: bankKey };
    const sig = (await dkimSign(msg, { ...one, signatureData: [one] })).signatures;
    // 200 signatures with distinct selectors, each of which would be a DNS lookup, then a valid one.
    const junk = Array.from({ length: 200 }, (_, i) => sig.replace('s=sel1', `s=junk${i}`)).join('');
    const before = dns.queries.length;
    const { by, names } = await runAuth(junk + sig + msg, { options: { max_dkim_signatures: 5 } });
    const keyQueries = dns.queries.slice(before).filter((q) => q.includes('._domainkey.'));
    expect(keyQueries.length).toBeLessThanOrEqual(5);
    expect(names).toContain('DKIM_INVALID');
    expect(by.DKIM_INVALID.detail).toContain('dkim=policy (196 signatures beyond 5 not verified)');
    expect(names).not.toContain('CHECK_FAILED');
  });

  it('checks nothing for a trusted client', async () => {
    const before = dns.queries.length;
    expect((await runAuth(MSG(), { trusted: true })).hits).toEqual([]);
    expect(dns.queries.length).toBe(before);
  });

  it('never fails on hostile bytes', async () => {
    const hostile = fc.oneof(
      fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
      fc
        .array(
          fc.constantFrom(
            'DKIM-Signature: v=1; a=rsa-sha256; d=bank.example; s=sel1; h=from; bh=; b=\r\n',
            'DKIM-Signature: a=ed25519-sha256; d=; s=\r\n',
            'ARC-Seal: i=1; a=rsa-sha256; cv=none; d=forwarder.example; s=arc1; b=AAAA\r\n',
            'ARC-Seal: i=99; cv=fail\r\n',
            'ARC-Message-Signature: i=1; a=rsa-sha256; d=forwarder.example; s=arc1; h=from; bh=x; b=y\r\n',
            'ARC-Authentication-Results: i=1; x; spf=pass\r\n',
            'From: <>\r\n',
            'From: a@b@c, "x" <@>\r\n',
            'From: =?utf-8?B?//79?= <a@bank.example>\r\n',
            '\tfolded continuation\r\n',
            'Content-Type: multipart/mixed; boundary=\r\n',
            ': no name\r\n',
          ),
          { maxLength: 12 },
        )
        .map((lines) => Buffer.from(`${lines.join('')}\r\nbody\r\n`, 'latin1')),
    );
    await fc.assert(
      fc.asyncProperty(hostile, fc.constantFrom('', 'alerts@bank.example', 'x@[192.0.2.1]', 'a@b'), async (raw, from) => {
        const { names } = await runAuth(raw, { from });
        expect(names).not.toContain('CHECK_FAILED');
      }),
      { numRuns: 60 },
    );
  });
});

describe('Authentication-Results from the auth hits', () => {
  it('is built from the stored symbols, one result a line, with hostile text defused', async () => {
    const { hits } = await runAuth(MSG(), { ip: '203.0.113.5', from: 'ceo@bank.example' });
    const stored = JSON.stringify([
      ...hits.map((h) => ({ name: h.name, score: h.score, detail: h.detail })),
      { name: 'HDR_DATE_FUTURE', score: 1, detail: ['spf=pass looks like a result but is not an auth symbol'] },
      { name: 'SPF_PASS', score: 0, detail: ['spf=pass (x;\r\nX-Injected: yes) smtp.mailfrom=a@b'] },
    ]);
    const results = authResultsOf(stored);
    expect(results[0]).toMatch(/^spf=fail /);
    expect(results.some((r) => r.startsWith('dmarc=fail (p=REJECT)'))).toBe(true);
    expect(results.join('|')).not.toContain('looks like a result');
    const raw = Buffer.from(`Authentication-Results:\r\n\tmx.example.com; dmarc=pass\r\n${MSG()}`, 'latin1');
    const out = prepareCopy(raw, 'mx.example.com', undefined, results).toString('latin1');
    const head = out.slice(0, out.indexOf('\r\n\r\n'));
    expect(head.match(/^Authentication-Results:/gm)).toHaveLength(1);
    expect(head).toMatch(/^Authentication-Results: mx\.example\.com;\r\n\tspf=fail [^\r\n]*;\r\n\tspf=pass \(x X-Injected: yes\) smtp\.mailfrom=a@b;\r\n\tdkim=none/m);
    expect(head).not.toMatch(/^X-Injected/m);
    expect(head).not.toContain('dmarc=pass');
    // Nothing to report and not tagged: no field at all.
    expect(prepareCopy(Buffer.from(MSG(), 'latin1'), 'mx.example.com').toString('latin1')).toBe(MSG());
  });

  it('carries the verdict of a tagged copy in the same field', () => {
    const out = prepareCopy(Buffer.from(MSG(), 'latin1'), 'mx.example.com', { score: 6, symbols: [], action: 'tag' }, ['spf=pass smtp.mailfrom=a@bank.example']).toString('latin1');
    expect(out).toContain('Authentication-Results: mx.example.com;\r\n\tspf=pass smtp.mailfrom=a@bank.example;\r\n\tx-postern=tag (score 6.00)\r\n');
  });

  it('sits right below our own Received field, which stays the topmost trace field', () => {
    const received = 'Received: from mail.bank.example ([192.0.2.10])\r\n\tby mx.example.com (Postern) with ESMTP id 01JP5ZQ4X0CASE000000;\r\n\tFri, 14 Mar 2025 10:00:00 +0000\r\n';
    const out = prepareCopy(Buffer.from(received + MSG(), 'latin1'), 'mx.example.com', undefined, ['dkim=none (message not signed)']).toString('latin1');
    expect(out).toBe(`${received}Authentication-Results: mx.example.com;\r\n\tdkim=none (message not signed)\r\n${MSG()}`);
  });
});

// The generator's output is what the cases run on; a key change without regenerating would break them quietly.
it('publishes in zone.json the public half of each committed fixture key', () => {
  const zone = JSON.parse(fs.readFileSync(ZONE_FILE, 'utf8')) as Record<string, { TXT?: string[] }>;
  for (const f of fs.readdirSync(path.join(import.meta.dirname, 'fixtures', 'keys'))) {
    const [selector, ...domain] = f.replace(/\.pem$/, '').split('.');
    const pem = fs.readFileSync(path.join(import.meta.dirname, 'fixtures', 'keys', f), 'utf8').replace(/^#.*\n/, '');
    const pub = crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');
    expect(zone[`${selector}._domainkey.${domain.join('.')}`]?.TXT?.[0]).toBe(`v=DKIM1; k=rsa; p=${pub}`);
  }
});
