// The parts of the urls check on real strings and messages: host encodings, look-alike comparison, anchor text,
// wording, extraction bounds, and the scores the fixture lures reach.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import MailComposer from 'nodemailer/lib/mail-composer';
import { buildMessageView } from '../../message-view.ts';
import { Runner } from '../../runner.ts';
import { ScoreTable, total } from '../../scoring.ts';
import { silentLogger } from '../../../core/log.ts';
import { CHECKS } from '../index.ts';
import { caseInput, loadCases } from '../cases.ts';
import { displayedUrl } from './anchor.ts';
import { extractUrls } from './extract.ts';
import { hostInfo, parseUrl } from './host.ts';
import { lookalikeOf, mixedScriptLabel, oneEditApart, protectedDomains, skeleton } from './lookalike.ts';
import { phishPhrases } from './wording.ts';
import { urls } from './urls.ts';

async function view(mail: ConstructorParameters<typeof MailComposer>[0]) {
  const raw = await new MailComposer({ from: 'a@sender.example', to: 'b@example.com', subject: 't', ...mail }).compile().build();
  return buildMessageView(Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1'));
}

describe('hosts', () => {
  it('tells dotted IP literals from the numeric encodings browsers also accept', () => {
    expect(hostInfo('203.0.113.77')).toMatchObject({ ip: 'v4', privateIp: false });
    expect(hostInfo('192.168.1.10')).toMatchObject({ ip: 'v4', privateIp: true });
    expect(hostInfo('127.0.0.1').privateIp).toBe(true);
    for (const h of ['3232235777', '0xc0a80101', '0xC0.0xA8.1.1', '0300.0250.1.1', '192.168.001.001', '10.1']) {
      expect(hostInfo(h).ip, h).toBe('v4-encoded');
    }
    expect(hostInfo('2001:db8::1', true)).toMatchObject({ ip: 'v6', privateIp: false });
    expect(hostInfo('fe80::1', true).privateIp).toBe(true);
    expect(hostInfo('1.2.3.4.5').ip).toBeUndefined();
  });

  it('finds the registrable domain, punycode and %-escaped hosts', () => {
    expect(hostInfo('www.paypal.co.uk')).toMatchObject({ domain: 'paypal.co.uk', label: 'paypal' });
    expect(hostInfo('xn--pypal-4ve.com')).toMatchObject({ punycode: true, hostUnicode: 'p\u0430ypal.com', label: 'xn--pypal-4ve' });
    expect(hostInfo('p\u0430ypal.com')).toMatchObject({ host: 'xn--pypal-4ve.com', punycode: true });
    expect(hostInfo('%77ww.evil.example')).toMatchObject({ host: 'www.evil.example', escaped: true });
    expect(hostInfo('user.github.io').domain).toBe('user.github.io');
  });

  it('parses URLs as a browser does', () => {
    expect(parseUrl('http:\\\\evil.example\\login')?.host).toBe('evil.example');
    expect(parseUrl('ht\ttp://evil.example/')?.scheme).toBe('http');
    expect(parseUrl('//cdn.example.net/x.js')).toMatchObject({ scheme: 'http', host: 'cdn.example.net' });
    expect(parseUrl('http://paypal.com@evil.example/')).toMatchObject({ host: 'evil.example', userinfo: 'paypal.com' });
    expect(parseUrl('http://u:p@[2001:db8::1]:8080/')).toMatchObject({ ip: 'v6', port: 8080, userinfo: 'u:p' });
    expect(parseUrl('https://example.net:443/')?.port).toBeUndefined();
    expect(parseUrl('mailto:a@b.example')).toMatchObject({ scheme: 'mailto', host: '' });
    expect(parseUrl('/relative/path')).toBeUndefined();
    expect(parseUrl('images/logo.png')).toBeUndefined();
  });
});

describe('look-alikes', () => {
  const list = protectedDomains(
    ['example.com', 'paypal.com', 'apple.com', 'dhl.com', 'microsoft.com'].map((d, i) => ({ domain: d, own: i === 0 })),
    (d) => d.split('.')[0],
  );
  const like = (h: string) => lookalikeOf(hostInfo(h), list, 6);

  it('reduces confusable letters to one skeleton', () => {
    expect(skeleton('\u0440\u0430\u0443\u0440\u0430l')).toBe('paypal'); // Cyrillic р а у р а + Latin l
    expect(skeleton('rnicrosoft')).toBe('microsoft');
    expect(skeleton('paypa1')).toBe('paypal');
    expect(skeleton('p\u00e0yp\u00e1l')).toBe('paypal');
    expect(skeleton('\u0430\u0440\u0440\u04cf\u0435')).toBe('apple');
  });

  it('counts one edit, swaps included', () => {
    expect(oneEditApart('paypal', 'paypall')).toBe(true);
    expect(oneEditApart('paypal', 'paypla')).toBe(true);
    expect(oneEditApart('paypal', 'paypel')).toBe(true);
    expect(oneEditApart('paypal', 'paypal')).toBe(false);
    expect(oneEditApart('paypal', 'pyapla')).toBe(false);
  });

  it('flags mixed scripts only where no language mixes them', () => {
    expect(mixedScriptLabel('p\u0430ypal.com')).toBe('p\u0430ypal');
    expect(mixedScriptLabel('\u0430\u0440\u0440\u04cf\u0435.com')).toBeUndefined();
    expect(mixedScriptLabel('m\u00fcnchen.de')).toBeUndefined();
    expect(mixedScriptLabel('\u65e5\u672c\u30c6\u30b9\u30c8.jp')).toBeUndefined();
    expect(mixedScriptLabel('\u0441\u0430\u0439\u0442.\u0440\u0444')).toBeUndefined();
  });

  it('finds look-alikes of protected domains and leaves the real ones alone', () => {
    expect(like('www.paypa1.com')).toMatchObject({ how: 'confusable', of: { domain: 'paypal.com' } });
    expect(like('xn--pypal-4ve.com')?.of.domain).toBe('paypal.com');
    expect(like('secure.paypall.net')).toMatchObject({ how: 'one-edit' });
    expect(like('mail.exarnple.com')).toMatchObject({ of: { domain: 'example.com', own: true } });
    expect(like('dh1.com')?.of.domain).toBe('dhl.com');
    for (const h of ['www.paypal.com', 'paypal.co.uk', 'www.example.org', 'dhs.gov', 'apply.com', 'ample.com', '203.0.113.9']) {
      expect(like(h), h).toBeUndefined();
    }
  });
});

describe('hostile strings', () => {
  it('never throw in the URL, host, look-alike, anchor and wording code', () => {
    const list = protectedDomains([{ domain: 'paypal.com', own: false }], (d) => d.split('.')[0]);
    const parts = fc.constantFrom('http://', 'https:\\\\', '//', '@', ':', '.', '%', '%zz', 'xn--', '[', ']', '0x', '\u0430', 'paypal', '/', '?');
    const hostile = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.array(parts, { maxLength: 30 }).map((a) => a.join('')));
    fc.assert(
      fc.property(hostile, (s) => {
        const u = parseUrl(s);
        if (u?.host) lookalikeOf(u, list, 6);
        mixedScriptLabel(s);
        skeleton(s);
        displayedUrl(s);
        phishPhrases([s]);
      }),
      { numRuns: 500 },
    );
  });
});

describe('anchor text', () => {
  it('reads a URL or domain shown as link text', () => {
    expect(displayedUrl('https://www.paypal.com/')?.host).toBe('www.paypal.com');
    expect(displayedUrl('www.paypal.com')?.domain).toBe('paypal.com');
    expect(displayedUrl('<paypal.com>')?.domain).toBe('paypal.com');
    expect(displayedUrl('Log in at https://www.paypal.com/signin today')?.domain).toBe('paypal.com');
    for (const t of ['Click here', 'setup.py', 'notes.zip', 'bob@example.com', 'version 1.2.3', '']) expect(displayedUrl(t), t).toBeUndefined();
  });
});

describe('wording', () => {
  it('finds credential-harvest phrases in four languages', () => {
    expect(phishPhrases(['Please VERIFY  your\naccount now'])).toEqual(['verify your account']);
    expect(phishPhrases(['Ihr Konto wurde gesperrt.'])).toHaveLength(1);
    expect(phishPhrases(['Votre compte a été suspendu'])).toHaveLength(1);
    expect(phishPhrases(['Su cuenta ha sido suspendida'])).toHaveLength(1);
    expect(phishPhrases(['Your mailbox quota is almost reached', 'Your password expires in 2 days'])).toHaveLength(2);
  });

  it('leaves ordinary account mail alone', () => {
    expect(phishPhrases(['Please confirm your email address to complete the subscription.'])).toEqual([]);
    expect(phishPhrases(['The password field must not be empty; your account settings are saved.'])).toEqual([]);
  });
});

describe('extractUrls', () => {
  it('is made once per message: a second caller gets the same result', async () => {
    const v = await view({ text: 'see https://a.example.net/x' });
    const first = extractUrls(v);
    expect(extractUrls(v)).toBe(first);
    expect((await first).urls.map((u) => u.url)).toEqual(['https://a.example.net/x']);
  });

  it('takes tags named like the properties every object has as the unknown tags they are', async () => {
    const v = await view({ html: '<constructor src="https://a.example.net/">x</constructor><hasownproperty src="https://b.example.net/"></hasownproperty><a href="https://c.example.net/">c</a>' });
    const s = await extractUrls(v);
    expect(s.urls.map((u) => u.host)).toEqual(['c.example.net']);
  });

  it('collects links with their text, forms, resources and text URLs', async () => {
    const v = await view({
      text: 'plain http://paypal.com@evil.example/x and www.docs.example.org/a.',
      html:
        '<a href="https://t.example.net/c?u=1">Read <b>more</b></a><area href="http://map.example.net/">' +
        '<img src="https://img.example.net/p.gif"><iframe src="https://frame.example.net/"></iframe>' +
        '<script src="https://js.example.net/a.js"></script><script>var u = "https://hidden.example.net/";</script>' +
        '<form action="https://post.example.net/p"><input name=a><input type=password></form>',
    });
    const s = await extractUrls(v);
    const bySource = Object.fromEntries(s.urls.map((u) => [u.host, u.source]));
    expect(bySource).toMatchObject({
      't.example.net': 'a',
      'map.example.net': 'area',
      'img.example.net': 'img',
      'frame.example.net': 'iframe',
      'js.example.net': 'script',
      'post.example.net': 'form',
      'evil.example': 'text',
      'www.docs.example.org': 'text',
    });
    expect(bySource['hidden.example.net']).toBeUndefined();
    expect(s.anchors.map((a) => a.text)).toEqual(['Read more']);
    expect(s.forms).toEqual([expect.objectContaining({ textInputs: 2, passwords: 1 })]);
  });

  it('stays bounded on hostile bodies', async () => {
    const links = Array.from({ length: 20_000 }, (_, i) => `<a href="https://h${i}.example.net/">x</a>`).join('');
    const nested = '<div><a href="https://n.example.net/">'.repeat(5_000);
    const longWord = 'a'.repeat(1_000_000) + '.com';
    const v = await view({ html: links + nested, text: `${longWord} ${'http://x.example.net/ '.repeat(10)}` });
    const s = await extractUrls(v, { maxUrls: 500 });
    expect(s.urls.length).toBe(500);
    expect(s.truncated).toBe(true);
    expect(s.anchors.length).toBeLessThanOrEqual(25_001);
  });
});

describe('scores of the fixtures', () => {
  const cases = loadCases(urls);
  const table = new ScoreTable(CHECKS, {});
  async function score(file: string) {
    const c = cases.find((k) => k.file === file)!;
    const { input, now } = await caseInput(c);
    const runner = new Runner({
      checks: [urls],
      options: new Map([[urls.name, urls.options!.parse(c.options ?? {})]]),
      scores: table,
      timeoutMs: 2_000,
      log: silentLogger,
      now: () => now,
    });
    return total((await runner.run('data', input)).hits, table).score;
  }

  it('puts a look-alike of a protected domain with phishing wording in quarantine on its own', async () => {
    for (const f of ['punycode-cyrillic-paypal.eml', 'ascii-lookalike-paypa1.eml', 'own-domain-lookalike.eml']) {
      expect(await score(f), f).toBeGreaterThanOrEqual(8);
    }
  });

  it('gives clean mail 0', async () => {
    for (const f of ['newsletter-tracking.eml', 'reply-thread.eml', 'invoice-notification.eml']) expect(await score(f), f).toBe(0);
  });
});
