// Quarantine links and the recipient's page over real HTTP, with mail held by the real gateway and released to a
// real downstream: prefetch safety, single use, forged/altered/expired links, sessions scoped to one recipient.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { linkUrl } from '../../src/quarantine/links.ts';
import { LinkSigner, type LinkAction } from '../../src/quarantine/tokens.ts';

let p: TestPostern;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
  p = await startTestPostern(`
[gateway]
domains = ["example.com"]
[relay.downstream]
host = "127.0.0.1"
port = ${sink.port}
protocol = "smtp"
tls = "none"
[[policy.rules]]
recipient = "ann@example.com"
action = "quarantine"
[[policy.rules]]
recipient = "ben@example.com"
action = "quarantine"
`);
});
afterAll(async () => {
  await p?.close();
  await sink?.close();
});

/** Sends one message through the gateway and returns the id of its quarantine entry for `to`. */
async function hold(to: string, subject: string, body = 'Hello,\r\nthe numbers are attached.\r\n'): Promise<string> {
  const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
  const raw = `From: Carl <carl@example.org>\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@example.org>\r\n\r\n${body}`;
  const info = await c.sendMail({ envelope: { from: 'carl@example.org', to: [to] }, raw });
  const qid = /queued as (\w+)/.exec(info.response)![1];
  const id = `${qid}.${to}`;
  await until(async () => (await p.app.quarantine.get(id))?.status === 'held', 10_000, 'entry held');
  return id;
}

const link = (action: LinkAction, id: string, rcpt: string) => linkUrl(p.app.signer, p.webUrl, action, id, rcpt, 14);
const confirm = (url: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body: new URLSearchParams({ confirm: '1' }), headers, redirect: 'manual' });
const delivered = (subject: string) => sink.messages.filter((m) => m.raw.toString().includes(`Subject: ${subject}`));

async function refusals(): Promise<{ reason: string; action: string; ip: string }[]> {
  await p.app.sink.flush();
  const rows = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'quarantine.link_refused').orderBy('id').execute();
  return rows.map((r) => JSON.parse(r.data));
}

describe('quarantine links', () => {
  it('a prefetch GET changes nothing; the confirmed POST releases once; a replay is refused', async () => {
    const id = await hold('ann@example.com', 'release me');
    const url = link('release', id, 'ann@example.com');
    const token = url.slice(url.lastIndexOf('/') + 1);
    for (let i = 0; i < 3; i++) {
      const r = await fetch(url, { headers: { 'user-agent': 'Mozilla/5.0 (compatible; SafeLinks)' } });
      expect(r.status).toBe(200);
      const html = await r.text();
      expect(html).toContain(`<form method="post" action="/q/${token}">`);
      expect(html).toContain('<input type="hidden" name="confirm" value="1">');
      expect(html).toContain('carl@example.org');
      expect(html).toContain('release me');
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
      expect(r.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
      expect(html).not.toMatch(/<script/i);
    }
    await new Promise((r) => setTimeout(r, 600)); // past a relay poll: nothing may be on its way
    expect((await p.app.quarantine.get(id))!.status).toBe('held');
    expect(delivered('release me')).toHaveLength(0);

    const ok = await confirm(url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('Message released');
    await until(() => delivered('release me').length === 1, 10_000, 'released copy downstream');
    expect(delivered('release me')[0].to).toEqual(['ann@example.com']);
    expect((await p.app.quarantine.get(id))).toMatchObject({ status: 'released', acted_by: 'link:ann@example.com' });

    const again = await confirm(url);
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('already used');
    const reopened = await fetch(url);
    expect(reopened.status).toBe(409);
    await new Promise((r) => setTimeout(r, 300));
    expect(delivered('release me')).toHaveLength(1);
    expect((await refusals()).filter((e) => e.reason === 'used' && e.action === 'release').length).toBeGreaterThanOrEqual(2);
  });

  it('two concurrent confirmations of one release link deliver exactly one copy', async () => {
    const id = await hold('ann@example.com', 'double click');
    const url = link('release', id, 'ann@example.com');
    const codes = (await Promise.all([confirm(url), confirm(url), confirm(url)])).map((r) => r.status).sort();
    expect(codes).toEqual([200, 409, 409]);
    await until(() => delivered('double click').length === 1, 10_000, 'one copy');
    await new Promise((r) => setTimeout(r, 500));
    expect(delivered('double click')).toHaveLength(1);
  });

  it('refuses forged, altered, expired, malformed and cross-recipient links with a page and an event', async () => {
    const id = await hold('ann@example.com', 'keep me held');
    const benId = await hold('ben@example.com', 'for ben');
    const url = link('release', id, 'ann@example.com');
    const token = url.slice(url.lastIndexOf('/') + 1);
    const [body, mac] = token.split('.');
    const flipMac = `${body}.${mac.slice(0, 10)}${mac[10] === 'A' ? 'B' : 'A'}${mac.slice(11)}`;
    // The same claims with the action swapped to delete, keeping the release link's MAC (W-04).
    const fields = JSON.parse(Buffer.from(body, 'base64url').toString());
    const swapped = `${Buffer.from(JSON.stringify(fields.map((f: unknown) => (f === 'release' ? 'delete' : f)))).toString('base64url')}.${mac}`;
    const otherKey = new LinkSigner(Buffer.alloc(32, 9)).sign({ action: 'release', qid: id, rcpt: 'ann@example.com', exp: Date.now() + 86_400_000 });
    const expired = p.app.signer.sign({ action: 'release', qid: id, rcpt: 'ann@example.com', exp: Date.now() - 120_000 });
    const cases: [string, number, string, string][] = [
      [flipMac, 403, 'forged', 'This link is not valid'],
      [swapped, 403, 'forged', 'This link is not valid'],
      [otherKey, 403, 'forged', 'This link is not valid'],
      [expired, 410, 'expired', 'This link has expired'],
      ['not-a-token', 400, 'malformed', 'not a valid quarantine link'],
      [token.slice(0, -5), 400, 'malformed', 'not a valid quarantine link'],
    ];
    const before = (await refusals()).length;
    for (const [t, status, , text] of cases) {
      for (const method of ['GET', 'POST'] as const) {
        const r = method === 'GET' ? await fetch(`${p.webUrl}/q/${t}`) : await confirm(`${p.webUrl}/q/${t}`);
        expect([t, method, r.status]).toEqual([t, method, status]);
        expect(await r.text()).toContain(text);
      }
    }
    // A link made for Ann naming Ben's entry.
    const cross = await confirm(link('release', benId, 'ann@example.com'));
    expect(cross.status).toBe(403);
    expect(await cross.text()).toContain('another recipient');
    // Far too long to be a link.
    const long = await fetch(`${p.webUrl}/q/${'a'.repeat(5000)}`);
    expect(long.status).toBe(414);
    expect(await long.text()).toContain('<h1>');
    const badUrl = await fetch(`${p.webUrl}/q/%zz`);
    expect([badUrl.status, badUrl.headers.get('referrer-policy')]).toEqual([400, 'no-referrer']);

    const events = (await refusals()).slice(before);
    for (const [, , reason] of cases) expect(events.filter((e) => e.reason === reason).length).toBeGreaterThanOrEqual(2);
    expect(events.some((e) => e.reason === 'other_rcpt')).toBe(true);
    expect(events.every((e) => e.ip === '127.0.0.1' || e.ip === '::ffff:127.0.0.1')).toBe(true);
    expect((await p.app.quarantine.get(id))!.status).toBe('held');
    expect((await p.app.quarantine.get(benId))!.status).toBe('held');
    expect(delivered('keep me held')).toHaveLength(0);
  });

  it('refuses a confirmation posted from another site, and one without confirm=1', async () => {
    const id = await hold('ann@example.com', 'cross site');
    const url = link('release', id, 'ann@example.com');
    expect((await confirm(url, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await confirm(url, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await fetch(url, { method: 'POST', body: new URLSearchParams({ confirm: 'yes' }) })).status).toBe(400);
    expect((await fetch(url, { method: 'POST', body: 'x'.repeat(200_000), headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(413);
    expect((await p.app.quarantine.get(id))!.status).toBe('held');
    // Still usable: none of those spent it.
    expect((await confirm(url, { origin: p.webUrl })).status).toBe(200);
  });

  it('a delete link deletes once; an allow link lists the sender for that recipient only', async () => {
    const id = await hold('ann@example.com', 'delete me');
    const del = link('delete', id, 'ann@example.com');
    expect(await (await fetch(del)).text()).toContain('Delete this message?');
    expect((await p.app.quarantine.get(id))!.status).toBe('held');
    const r = await confirm(del);
    expect(r.status).toBe(200);
    expect((await p.app.quarantine.get(id))).toMatchObject({ status: 'deleted', acted_by: 'link:ann@example.com' });
    expect((await confirm(del)).status).toBe(409);

    const id2 = await hold('ann@example.com', 'allow them');
    const allow = link('allow', id2, 'ann@example.com');
    expect(await (await fetch(allow)).text()).toContain('Always accept mail from carl@example.org for you?');
    expect(await p.app.store.db.selectFrom('policies').selectAll().where('target', '=', 'carl@example.org').execute()).toHaveLength(0);
    const allowed = await confirm(allow);
    expect([allowed.status, await allowed.text()]).toEqual([200, expect.stringContaining('Sender allowed')]);
    const rows = await p.app.store.db.selectFrom('policies').selectAll().where('target', '=', 'carl@example.org').execute();
    expect(rows.map((x) => [x.target_kind, x.action, JSON.parse(x.params).for])).toEqual([['sender', 'allow', 'ann@example.com']]);
    expect(delivered('delete me')).toHaveLength(0);
  });

  it('a view link opens a session for one recipient: their list, never another recipient’s entries', async () => {
    const annId = await hold('ann@example.com', 'ann list item');
    const benId = await hold('ben@example.com', 'ben secret item');
    expect((await fetch(`${p.webUrl}/quarantine`)).status).toBe(401);

    const v = await fetch(link('view', '*', 'ann@example.com'), { redirect: 'manual' });
    expect(v.status).toBe(303);
    expect(v.headers.get('location')).toBe('/quarantine');
    const setCookie = v.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^postern_q=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43};/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);
    expect(setCookie).toMatch(/Path=\//);
    const cookie = setCookie.split(';')[0];

    const list = await fetch(`${p.webUrl}/quarantine`, { headers: { cookie } });
    expect(list.status).toBe(200);
    const html = await list.text();
    expect(html).toContain('ann list item');
    expect(html).not.toContain('ben secret item');
    expect(html).not.toContain('ben@example.com');
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1];

    const enc = encodeURIComponent;
    expect((await fetch(`${p.webUrl}/quarantine/${enc(benId)}`, { headers: { cookie } })).status).toBe(404);
    const post = (id: string, action: string, form: Record<string, string>) =>
      fetch(`${p.webUrl}/quarantine/${enc(id)}/${action}`, { method: 'POST', headers: { cookie }, body: new URLSearchParams(form), redirect: 'manual' });
    expect((await post(benId, 'release', { csrf })).status).toBe(404);
    expect((await post(benId, 'delete', { csrf })).status).toBe(404);
    expect((await p.app.quarantine.get(benId))!.status).toBe('held');

    expect((await post(annId, 'release', {})).status).toBe(403);
    expect((await post(annId, 'release', { csrf: csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A') })).status).toBe(403);
    expect((await p.app.quarantine.get(annId))!.status).toBe('held');

    const ok = await post(annId, 'release', { csrf });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/quarantine?done=released');
    expect((await p.app.quarantine.get(annId))).toMatchObject({ status: 'released', acted_by: 'user:ann@example.com' });
    await until(() => delivered('ann list item').length === 1, 10_000, 'released from the page');
    const after = await (await fetch(`${p.webUrl}/quarantine?done=released`, { headers: { cookie } })).text();
    expect(after).toContain('on its way to your mailbox');
    expect(after).not.toContain('ann list item');
    // A flash code is looked up, never echoed.
    const echoed = await (await fetch(`${p.webUrl}/quarantine?done=${enc('<b>call 555</b>')}`, { headers: { cookie } })).text();
    expect(echoed).not.toContain('call 555');
  });

  it('shows a held message as escaped text, never its HTML', async () => {
    const hostile = '<img src=x onerror=alert(1)>';
    const body = 'Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><script>alert(2)</script><p>Pay the <b>invoice</b> &amp; more</p><a href="javascript:alert(3)">here</a></body></html>\r\n';
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    const raw = `From: "<script>x</script>" <carl@example.org>\r\nTo: ann@example.com\r\nSubject: ${hostile}\r\nMIME-Version: 1.0\r\n${body}`;
    const info = await c.sendMail({ envelope: { from: 'carl@example.org', to: ['ann@example.com'] }, raw });
    const id = `${/queued as (\w+)/.exec(info.response)![1]}.ann@example.com`;
    await until(async () => (await p.app.quarantine.get(id))?.status === 'held', 10_000, 'hostile entry held');
    const cookie = (await fetch(link('view', '*', 'ann@example.com'), { redirect: 'manual' })).headers.get('set-cookie')!.split(';')[0];
    for (const url of [`${p.webUrl}/quarantine`, `${p.webUrl}/quarantine/${encodeURIComponent(id)}`]) {
      const html = await (await fetch(url, { headers: { cookie } })).text();
      expect(html).not.toMatch(/<script|<img|href="javascript/i);
      expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
      if (url.endsWith(encodeURIComponent(id))) {
        expect(html).toContain('Pay the invoice &amp; more');
        expect(html).not.toContain('alert(2)');
        expect(html).toContain('&lt;script&gt;x&lt;/script&gt;');
      }
    }
  });

  it('marks the session cookie Secure when the public URL is https', async () => {
    const q = await startTestPostern('[web]\npublic_url = "https://mail-gw.example.com"\n');
    try {
      expect(q.webUrl).toBe('https://mail-gw.example.com');
      const url = linkUrl(q.app.signer, `http://127.0.0.1:${q.app.web!.port}`, 'view', '*', 'ann@example.com', 14);
      const r = await fetch(url, { redirect: 'manual' });
      expect(r.status).toBe(303);
      expect(r.headers.get('set-cookie')).toMatch(/; Secure/i);
    } finally {
      await q.close();
    }
  });
});
