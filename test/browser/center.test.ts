// The monitoring center in a real browser (Debian's Chromium through playwright-core) against a running Postern:
// sign in through the login page, mail sent through the real gateway appearing on the overview, search and a
// message's story, releasing a quarantined threat, adding and lifting a policy, a mailbox user's activity with its
// audit switched on, the settings filtered to a key and the detectors on the policies page, and a user account that
// sees only its own quarantine. Writes the screenshots in docs/images/center-*.png.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { inProcess } from '../harness/cli.ts';
import { CHROMIUM, missing } from '../harness/services.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const THREATS = path.join(ROOT, 'test/fixtures/threats');
const IMAGES = path.join(ROOT, 'docs/images');
const ALICE = 'alice.martin@fabrikam.com';
const BOB = 'bob.stone@fabrikam.com';
const PW = { root: 'root password for the center', alice: 'alice password for the center' };
const CAROL = 'carol.white@fabrikam.com';
const WEBMAIL_KEY = 'webmail-key-for-the-center-test';

/** Builds ui/dist when it is missing or older than a source file (about a second). */
function buildUi(): void {
  const ui = path.join(ROOT, 'ui');
  const built = path.join(ui, 'dist/index.html');
  const newest = (dir: string): number =>
    Math.max(...fs.readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).mtimeMs)));
  const sources = Math.max(newest(path.join(ui, 'src')), fs.statSync(path.join(ui, 'index.html')).mtimeMs, fs.statSync(path.join(ui, 'vite.config.ts')).mtimeMs);
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= sources) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', ui, '--logLevel', 'warn'], { stdio: 'inherit' });
}

/** Sends one message over SMTP (dot-stuffed) and returns the queue id from the 250 reply. */
async function send(port: number, from: string, to: string[], raw: string, helo = 'mail.sender.example'): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.cmd(`EHLO ${helo}`)).toMatch(/^250/);
    expect(await c.cmd(`MAIL FROM:<${from}>`)).toMatch(/^250 /);
    for (const r of to) expect(await c.cmd(`RCPT TO:<${r}>`)).toMatch(/^250 /);
    expect(await c.cmd('DATA')).toMatch(/^354 /);
    const body = raw.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    const done = await c.cmd(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.`);
    const id = /queued as (\w+)/.exec(done)?.[1];
    if (!id) throw new Error(`not queued: ${done}`);
    await c.cmd('QUIT');
    return id;
  } finally {
    c.sock.destroy();
  }
}

/** A GET whose body is always read: an unread body keeps its connection busy, and the server's close waits for it. */
async function httpGet(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const r = await fetch(url, init);
  return { status: r.status, headers: r.headers, text: await r.text() };
}

const threat = (file: string) => fs.readFileSync(path.join(THREATS, file), 'latin1');
const clean = (subject: string, to: string) =>
  `From: Ann Lee <ann.lee@partner.example>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@partner.example>\r\n\r\nHello,\r\nthe minutes of Tuesday's meeting are below.\r\n`;

describe.skipIf(await missing('chromium'))('the monitoring center in Chromium', () => {
  let p: TestPostern;
  let sink: Sink;
  let browser: Browser;
  const errors: string[] = [];
  const refused: RegExp[] = [];
  const held: Record<string, string> = {};

  beforeAll(async () => {
    buildUi();
    sink = await startSink();
    p = await startTestPostern(
      `[gateway]\nhostname = "mx.fabrikam.com"\ndomains = ["fabrikam.com"]\n` +
        `[relay]\nretry_schedule_s = [3600]\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\nprotocol = "smtp"\ntls = "none"\n` +
        `[monitor.webmail]\nenabled = true\nkeys = [{ name = "roundcube", key = "${WEBMAIL_KEY}" }]\n` +
        // The trend analyzer keeps the per-source figures of the overview's top sources.
        `[trends]\npoll_ms = 100\n`,
    );
    const cliConfig = path.join(p.dir, 'cli.toml');
    fs.writeFileSync(cliConfig, `data_dir = ${JSON.stringify(p.dir)}\n`);
    const pw = (s: string) => {
      const f = path.join(p.dir, `pw-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(f, `${s}\n`, { mode: 0o600 });
      return f;
    };
    for (const args of [
      ['user', 'add', 'root', '--role', 'admin', '--password-file', pw(PW.root)],
      ['user', 'add', 'alice', '--role', 'user', '--address', ALICE, '--password-file', pw(PW.alice)],
    ]) {
      const r = await inProcess([...args, '--config', cliConfig]);
      expect(r.code, r.stderr).toBe(0);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    fs.mkdirSync(IMAGES, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await p?.close();
    await sink?.close();
  });

  async function open(): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    const page = await ctx.newPage();
    // A CSP violation or a script error shows up here; the pages must have none. The one 401 expected is the
    // session check before signing in; a test that makes the server refuse something on purpose lists it in refused.
    page.on('console', (m) => {
      const line = `${m.text()} (${m.location().url})`;
      if (m.type() === 'error' && !(m.text().includes('status of 401') && m.location().url.endsWith('/api/v1/session')) && !refused.some((r) => r.test(line))) errors.push(line);
    });
    page.on('pageerror', (e) => errors.push(e.message));
    return { ctx, page };
  }

  async function signIn(page: Page, name: string, password: string): Promise<void> {
    await page.goto(`${p.webUrl}/ui/`);
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('header .who').getByText(name).waitFor();
  }

  const shot = (page: Page, name: string, fullPage = false) => page.screenshot({ path: path.join(IMAGES, `center-${name}.png`), fullPage });

  it('serves the app under its own CSP, with hashed assets cached and the index never', async () => {
    const index = await httpGet(`${p.webUrl}/ui/messages/anything`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(index.headers.get('cache-control')).toBe('no-store');
    const html = index.text;
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)![1];
    const js = await httpGet(`${p.webUrl}${asset}`);
    expect([js.status, js.headers.get('content-type'), js.headers.get('cache-control')]).toEqual([200, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    expect((await httpGet(`${p.webUrl}/ui/assets/missing.js`)).status).toBe(404);
    // The recipients' pages keep their script-free policy; "/" without a session still goes to them.
    expect((await httpGet(`${p.webUrl}/quarantine`)).headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'self'; img-src 'self';/);
    expect((await httpGet(`${p.webUrl}/`, { redirect: 'manual' })).headers.get('location')).toBe('/quarantine');
  });

  it('signs an admin in, shows new mail on the overview, searches it and opens its story', async () => {
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // Mail sent after the page opened appears without a reload (the event stream or the poll).
    await send(p.port, 'ann.lee@partner.example', [ALICE], clean('Minutes of Tuesday', ALICE));
    await send(p.port, 'ann.lee@partner.example', [BOB], clean('Agenda for Friday', BOB));
    for (const [file, rcpt] of [['exe-in-zip.eml', ALICE], ['macro-doc.eml', ALICE], ['iso-image.eml', BOB]] as const) {
      const raw = threat(file);
      const from = /^From:.*<([^>]+)>/m.exec(raw)![1];
      const id = await send(p.port, from, [rcpt], raw, /\bby (\S+)/.exec(raw)![1]);
      held[file] = `${id}.${rcpt}`;
    }
    for (const id of Object.values(held)) await until(async () => (await p.app.quarantine.get(id))?.status === 'held', 10_000, `${id} held`);
    const latest = page.locator('table.latest-messages');
    await latest.getByText('Minutes of Tuesday').waitFor({ timeout: 20_000 });
    await latest.getByText('DHL Shipment 7731440982').waitFor({ timeout: 20_000 });
    // Three held, one per threat; the clean two accepted.
    await page.locator('[data-total="quarantine"]', { hasText: /^3$/ }).waitFor({ timeout: 20_000 });
    await page.locator('[data-total="accept"]', { hasText: /^2$/ }).waitFor({ timeout: 20_000 });
    await page.locator('.chart canvas').first().waitFor();
    // The analyzer's per-source figures, written as it goes: once it has read this mail, the top sources show it.
    await p.app.sink.flush();
    await p.app.analyzer!.drain();
    await page.reload();
    await page.locator('table.top-address tr[data-key="127.0.0.1"]').waitFor({ timeout: 20_000 });
    await page.locator('.chart canvas').first().waitFor();
    await shot(page, 'overview');

    // A session on "/" goes to the center.
    const root = await page.request.get(`${p.webUrl}/`, { maxRedirects: 0 });
    expect(root.headers().location).toBe('/ui/');

    await page.locator('header nav').getByRole('link', { name: 'Messages' }).click();
    await page.getByLabel('Subject contains').fill('dhl');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('table.messages tbody tr');
    await rows.first().getByText('DHL Shipment').waitFor();
    expect(await rows.count()).toBe(1);
    expect(new URL(page.url()).search).toBe('?subject=dhl');
    await page.getByLabel('Subject contains').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('table.messages tbody tr').nth(4).waitFor();
    expect(await page.locator('table.messages tbody tr').count()).toBe(5);
    await shot(page, 'messages');

    await page.locator('table.messages').getByRole('link', { name: /DHL Shipment/ }).click();
    await page.getByRole('heading', { name: /DHL Shipment 7731440982/ }).waitFor();
    const symbols = page.locator('table.symbols');
    await symbols.getByText('ATT_EXECUTABLE', { exact: true }).waitFor();
    await page.locator('table.recipients').getByText(ALICE).waitFor();
    expect(await page.locator('table.recipients .badge').first().textContent()).toBe('quarantine');
    expect(await page.locator('table.copies .badge').first().textContent()).toBe('held');
    await shot(page, 'message', true);
    await ctx.close();
  });

  it('releases a quarantined threat from the quarantine page', async () => {
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.locator('header nav').getByRole('link', { name: 'Quarantine' }).click();
    const rows = page.locator('table.quarantine tbody tr');
    await rows.nth(2).waitFor();
    expect(await rows.count()).toBe(3);
    await shot(page, 'quarantine');
    const id = held['exe-in-zip.eml'];
    await page.locator(`tr[data-id="${id}"]`).getByRole('button', { name: 'Release' }).click();
    await page.getByRole('status').getByText(/^Released: .*DHL Shipment/).waitFor();
    await until(() => rows.count().then((n) => n === 2), 5000, 'the released entry to leave the held list');
    expect((await p.app.quarantine.get(id))!).toMatchObject({ status: 'released', acted_by: 'admin:root' });
    await until(() => sink.messages.some((m) => m.raw.toString('latin1').includes('DHL Shipment 7731440982')), 10_000, 'the released copy downstream');
    expect(sink.messages.find((m) => m.raw.toString('latin1').includes('DHL Shipment 7731440982'))!.to).toEqual([ALICE]);
    await ctx.close();
  });

  it('adds and lifts a policy, and lists clusters', async () => {
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.locator('header nav').getByRole('link', { name: 'Policies' }).click();
    await page.getByLabel('Target').fill('192.0.2.77');
    await page.getByLabel('Hours').fill('24');
    await page.getByLabel('Reason').fill('probing our recipients');
    await page.getByRole('button', { name: 'Add policy' }).click();
    await page.getByRole('status').getByText(/^Added P\w+: block ip 192\.0\.2\.77/).waitFor();
    const row = page.locator('table.policies tbody tr', { hasText: '192.0.2.77' });
    await row.waitFor();
    const pid = await row.getAttribute('data-id');
    expect(await p.app.store.db.selectFrom('policies').select(['target', 'action', 'source']).where('id', '=', pid!).executeTakeFirst()).toEqual({ target: '192.0.2.77', action: 'block', source: 'admin' });
    await shot(page, 'policies');
    await row.getByRole('button', { name: 'Lift' }).click();
    await page.getByRole('status').getByText(`Lifted ${pid}`).waitFor();
    await row.waitFor({ state: 'detached' });
    expect(await p.app.store.db.selectFrom('policies').select('id').where('id', '=', pid!).executeTakeFirst()).toBeUndefined();

    await page.locator('header nav').getByRole('link', { name: 'Clusters' }).click();
    await page.getByRole('heading', { name: 'Clusters' }).waitFor();
    await page.locator('main').getByText(/No clusters|Cluster/).first().waitFor();
    await ctx.close();
  });

  it("opens a mailbox user's activity, switches its audit on, and the audited list shows it; the overview has alerts", async () => {
    const wm = await fetch(`${p.webUrl}/api/v1/collect/webmail`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${WEBMAIL_KEY}` },
      body: JSON.stringify([
        { type: 'login', user: CAROL, client_ip: '192.0.2.44', session: 'rc-carol-1' },
        { type: 'login_failed', user: CAROL, client_ip: '203.0.113.9' },
      ]),
    });
    expect(wm.status).toBe(200);
    await wm.text();
    await p.app.sink.flush();
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    await page.locator('header nav').getByRole('link', { name: 'Mailbox activity' }).click();
    await page.getByRole('heading', { name: 'Mailbox activity' }).waitFor();
    await page.getByText('Nobody is audited.').waitFor();
    await page.locator('table.mailboxes').getByRole('link', { name: CAROL }).waitFor();
    await page.getByLabel('Mailbox user').fill(CAROL);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: CAROL }).waitFor();
    const auth = page.locator('table.auth');
    await auth.getByText('192.0.2.44').waitFor();
    await auth.getByText('203.0.113.9').waitFor();
    await page.getByRole('button', { name: 'Switch audit on' }).click();
    await page.getByRole('status').getByText(`Audit switched on for ${CAROL}: its next login is audited.`).waitFor();
    await page.getByRole('button', { name: 'Switch audit off' }).waitFor();
    expect(await p.app.store.db.selectFrom('audit_users').select(['pattern', 'added_by']).execute()).toEqual([{ pattern: CAROL, added_by: 'admin:root' }]);
    await shot(page, 'mailbox');
    await page.locator('header nav').getByRole('link', { name: 'Mailbox activity' }).click();
    await page.locator(`table.audited tr[data-pattern="${CAROL}"]`).getByText('admin:root').waitFor();
    await ctx.close();
  });

  it('shows a user account only its own quarantine', async () => {
    const { ctx, page } = await open();
    await signIn(page, 'alice', PW.alice);
    // A user lands on the quarantine and has no other page.
    await page.getByRole('heading', { name: 'Quarantine' }).waitFor();
    expect(await page.locator('header nav a').allTextContents()).toEqual(['Quarantine']);
    const rows = page.locator('table.quarantine tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-id')).toBe(held['macro-doc.eml']);
    await page.getByLabel('Status').selectOption('any');
    await page.getByRole('button', { name: 'Show' }).click();
    await rows.nth(1).waitFor();
    expect(await rows.count()).toBe(2);
    expect(await page.locator('table.quarantine tbody td:nth-child(2)').allTextContents()).toEqual([ALICE, ALICE]);
    expect(await page.locator('main').textContent()).not.toContain(BOB);
    await shot(page, 'user-quarantine');
    // The staff pages are not reachable by typing their address either.
    await page.goto(`${p.webUrl}/ui/messages`);
    await page.getByText('This page is for admins and auditors').waitFor();
    await ctx.close();
  });

  it('shows the effective settings, filtered to a key, secrets hidden, and the detectors on the policies page', async () => {
    await p.app.store.db
      .insertInto('policies')
      .values({ id: 'P0000000000000000SET1', target_kind: 'ip', target: '198.51.100.250', action: 'block', params: '{}', reason: 'directory harvest', evidence: '{}', created_at: Date.now(), expires_at: Date.now() + 3_600_000, pinned: 0, source: 'analyzer:harvest' })
      .execute();
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.locator('header nav').getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    await page.getByLabel('Filter').fill('hostname');
    const host = page.locator('table.settings tr[data-key="gateway.hostname"]');
    await host.getByText('"mx.fabrikam.com"').waitFor();
    expect(await host.getAttribute('class')).toBe('changed');
    expect(new URL(page.url()).search).toBe('?q=hostname');
    await page.getByLabel('Filter').fill('webmail.keys');
    const keys = page.locator('table.settings tr[data-key="monitor.webmail.keys"]');
    await keys.getByText('(set)').waitFor();
    expect(await page.locator('main').textContent()).not.toContain(WEBMAIL_KEY);
    await page.getByLabel('Filter').fill('');
    await page.getByRole('button', { name: /\[gateway\]/ }).click();
    await page.locator('table.settings tr[data-key="gateway.domains"].changed').waitFor();
    await shot(page, 'settings');

    await page.locator('header nav').getByRole('link', { name: 'Policies' }).click();
    const harvest = page.locator('table.detectors tr[data-detector="harvest"]');
    await harvest.getByText('ip_unknown = 15').waitFor();
    expect(await harvest.locator('td.count').textContent()).toBe('1');
    await page.locator('table.detectors tr[data-detector="outbreak"]').getByText('min_members = 3').waitFor();

    // An admin lowers a threshold in place; the panel says who set it and what the file says.
    await harvest.getByRole('button', { name: 'Edit' }).click();
    const form = harvest.locator('form[data-edit="harvest"]');
    await form.locator('input[name="ip_unknown"]').fill('6');
    await form.getByRole('button', { name: 'Save' }).click();
    await page.getByText('harvest: changed ip_unknown; in force within seconds').waitFor();
    const row = harvest.locator('li[data-key="trends.harvest.ip_unknown"]');
    await row.getByText('ip_unknown = 6').waitFor();
    expect(await row.locator('[data-override]').textContent()).toMatch(/set by admin:root .*; file 15\)/);
    await shot(page, 'detectors');
    // A value the schema refuses is refused with its reason, and nothing changes.
    refused.push(/status of 400 .*\/api\/v1\/detectors\/harvest\)$/);
    await harvest.getByRole('button', { name: 'Edit' }).click();
    await form.locator('input[name="ip_ratio"]').fill('2');
    await form.getByRole('button', { name: 'Save' }).click();
    await page.locator('p.note.error').getByText(/trends\.harvest\.ip_ratio/).waitFor();
    await form.getByRole('button', { name: 'Reset to file' }).click();
    await harvest.getByText('ip_unknown = 15').waitFor();
    const api = (await page.evaluate(() => fetch('/api/v1/detectors').then((r) => r.json()))) as { items: { name: string; thresholds: { override: unknown }[] }[] };
    expect(api.items.find((d) => d.name === 'harvest')?.thresholds.every((t) => t.override === null)).toBe(true);
    await ctx.close();
  });

  it('shows the sending address and sender domain in the top sources panels, linked to their messages', async () => {
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.getByRole('heading', { name: 'Top sources' }).waitFor();
    const address = page.locator('table.top-address tr[data-key="127.0.0.1"]');
    await address.getByRole('link', { name: '127.0.0.1' }).waitFor();
    await address.getByText('127.0.0.0/24').waitFor();
    // Two clean messages and three held threats came from this address.
    expect(await address.locator('td.num').first().textContent()).toBe('5');
    const domain = page.locator('table.top-domain tr[data-key="partner.example"]');
    const link = domain.getByRole('link', { name: 'partner.example' });
    await link.waitFor();
    expect(await domain.locator('td.num').first().textContent()).toBe('2');
    expect(await link.getAttribute('href')).toBe('/ui/messages?sender=%40partner.example');
    await page.locator('table.top-address').scrollIntoViewIfNeeded();
    await shot(page, 'sources');
    await link.click();
    await page.getByRole('heading', { name: 'Messages' }).waitFor();
    await page.locator('table.messages').getByText('Minutes of Tuesday').waitFor();
    expect(new Set(await page.locator('table.messages tbody td:nth-child(2)').allTextContents())).toEqual(new Set(['ann.lee@partner.example']));
    await ctx.close();
  });

  it('adds an auditor on the Accounts page, with a token shown once; the auditor signs in, has no Accounts page and changes its password', async () => {
    const dana = { pw: 'dana password for the center', next: 'dana second password here' };
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.locator('header nav').getByRole('link', { name: 'Accounts' }).click();
    await page.getByRole('heading', { name: 'Accounts' }).waitFor();
    const form = page.locator('form.add-account');
    await form.getByLabel('Name').fill('Dana');
    await form.getByLabel('Role').selectOption('auditor');
    await form.getByLabel('Password', { exact: true }).fill(dana.pw);
    await form.getByRole('button', { name: 'Add account' }).click();
    await page.getByRole('status').getByText('Added dana (auditor).').waitFor();
    const row = page.locator('table.accounts tr[data-name="dana"]');
    await row.getByText('auditor').waitFor();
    expect(await p.app.store.db.selectFrom('accounts').select(['name', 'role', 'disabled']).where('name', '=', 'dana').executeTakeFirst()).toEqual({ name: 'dana', role: 'auditor', disabled: 0 });
    await row.getByRole('button', { name: 'Tokens' }).click();
    await page.getByRole('button', { name: 'Make token' }).click();
    const secret = (await page.locator('.new-token code').textContent())!;
    expect(secret).toMatch(/^pst_[\w-]{43}$/);
    await page.locator('table.tokens tbody tr').first().waitFor();
    await shot(page, 'accounts');
    const bearer = await httpGet(`${p.webUrl}/api/v1/session`, { headers: { authorization: `Bearer ${secret}` } });
    expect(JSON.parse(bearer.text)).toMatchObject({ name: 'dana', role: 'auditor', kind: 'token' });
    await ctx.close();

    const fresh = await open();
    await signIn(fresh.page, 'dana', dana.pw);
    await fresh.page.getByRole('heading', { name: 'Overview' }).waitFor();
    const nav = await fresh.page.locator('header nav a').allTextContents();
    expect(nav).toContain('Settings');
    expect(nav).not.toContain('Accounts');
    await fresh.page.locator('header .who').getByRole('button', { name: 'Change password' }).click();
    await fresh.page.getByRole('heading', { name: 'My account' }).waitFor();
    await fresh.page.getByLabel('Current password').fill(dana.pw);
    await fresh.page.getByLabel('New password', { exact: true }).fill(dana.next);
    await fresh.page.getByLabel('New password again').fill(dana.next);
    await fresh.page.getByRole('button', { name: 'Change password' }).last().click();
    await fresh.page.getByRole('status').getByText(/^Your password is changed/).waitFor();
    await fresh.page.goto(`${p.webUrl}/ui/accounts`);
    await fresh.page.getByText('This page is for admins').waitFor();
    await fresh.ctx.close();
  });

  it("blocks a held message's sender for the recipient's domain from the quarantine page; the policy is on the Policies page", async () => {
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.locator('header nav').getByRole('link', { name: 'Quarantine' }).click();
    const id = held['iso-image.eml'];
    const sender = (await p.app.quarantine.get(id))!.sender;
    const row = page.locator(`tr[data-id="${id}"]`);
    // A block for everyone asks once more: the first click writes nothing.
    await row.getByLabel('Scope').selectOption('global');
    await row.getByRole('button', { name: 'Block sender' }).click();
    await row.getByRole('button', { name: 'Confirm block for everyone' }).waitFor();
    expect(await p.app.store.db.selectFrom('policies').select('id').where('target', '=', sender).execute()).toEqual([]);
    await row.getByLabel('Scope').selectOption('domain');
    await row.getByRole('button', { name: 'Block sender' }).click();
    const flash = page.getByRole('status');
    await flash.getByText(`Blocked ${sender} for the domain fabrikam.com: block policy`).waitFor();
    const pid = (await flash.getByRole('link').textContent())!;
    const policy = await p.app.store.db.selectFrom('policies').select(['target_kind', 'action', 'params', 'source', 'reason']).where('id', '=', pid).executeTakeFirst();
    expect(policy).toMatchObject({ target_kind: 'sender', action: 'block', params: JSON.stringify({ for: '*@fabrikam.com' }), source: 'quarantine' });
    expect(policy!.reason).toContain('by admin:root');
    // Listing a sender does not release or delete the copy.
    expect((await p.app.quarantine.get(id))!.status).toBe('held');
    await flash.getByRole('link').click();
    await page.getByRole('heading', { name: 'Policies' }).waitFor();
    await page.locator(`table.policies tr[data-id="${pid}"]`).getByText(sender).waitFor();
    await ctx.close();
  });

  it('lets a user account allow the sender of its own held message for itself and report the message as spam', async () => {
    const { ctx, page } = await open();
    await signIn(page, 'alice', PW.alice);
    await page.getByRole('heading', { name: 'Quarantine' }).waitFor();
    const id = held['macro-doc.eml'];
    const sender = (await p.app.quarantine.get(id))!.sender;
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.getByRole('button', { name: 'Allow sender' }).waitFor();
    // A user lists senders for its own mailbox only: no scope to choose.
    expect(await row.getByLabel('Scope').count()).toBe(0);
    await row.getByRole('button', { name: 'Allow sender' }).click();
    const flash = page.getByRole('status');
    await flash.getByText(new RegExp(`^Allowed ${sender.replace(/[.+]/g, '\\$&')} for ${ALICE.replace(/\./g, '\\.')}: allow policy P\\w+\\.$`)).waitFor();
    // A user has no Policies page to link to.
    expect(await flash.getByRole('link').count()).toBe(0);
    const policies = await p.app.store.db.selectFrom('policies').select(['action', 'params', 'source', 'reason']).where('target', '=', sender).execute();
    expect(policies).toHaveLength(1);
    expect(policies[0]).toMatchObject({ action: 'allow', params: JSON.stringify({ for: ALICE }), source: 'quarantine' });
    expect(policies[0].reason).toContain('by user:alice');
    await row.getByRole('button', { name: 'Report spam' }).click();
    await flash.getByText(/^Reported “.*” as spam: the classifier learned it\.$/).waitFor();
    expect(await p.app.store.db.selectFrom('bayes_learned').select('class').execute()).toEqual([{ class: 'spam' }]);
    expect((await p.app.quarantine.get(id))!.status).toBe('held');
    await ctx.close();
  });

  it("marks a cluster safe, then bad with a block, on the cluster's page; the verdict says who set it", async () => {
    const now = Date.now();
    await p.app.store.db
      .insertInto('clusters')
      .values({ id: 990001, first_seen: now - 600_000, last_seen: now, members: 4, ips: 3, sender_domains: 2, recipients: 4, suspicious: 2, state: 'watching', declared_at: null, declared_by: null, subject: 'Invoice overdue', updated_at: now })
      .execute();
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.locator('header nav').getByRole('link', { name: 'Clusters' }).click();
    await page.locator('table.clusters').getByRole('link', { name: '#990001' }).click();
    await page.getByRole('heading', { name: /Cluster #990001/ }).waitFor();
    await page.locator('p.verdict[data-verdict="none"]').getByText('No verdict yet.').waitFor();
    const form = page.locator('form.mark-cluster');
    await form.getByLabel('Reason').fill('the quarterly invoice run of a customer');
    await form.getByRole('button', { name: 'Mark safe' }).click();
    const flash = page.getByRole('status');
    await flash.getByText(/^Marked cluster #990001 safe: allow policy P\w+\.$/).waitFor();
    const verdict = page.locator('p.verdict[data-verdict="safe"]');
    await verdict.getByText('admin:root').waitFor();
    await verdict.getByText(/the quarterly invoice run of a customer$/).waitFor();
    const pick = () => p.app.store.db.selectFrom('policies').select(['action', 'source', 'reason', 'evidence']).where('target_kind', '=', 'cluster').where('target', '=', '990001').execute();
    const safe = await pick();
    expect(safe).toMatchObject([{ action: 'allow', source: 'admin', reason: 'the quarterly invoice run of a customer' }]);
    expect(JSON.parse(safe[0].evidence)).toMatchObject({ verdict: 'safe', by: 'admin:root' });
    await shot(page, 'cluster');
    await form.getByLabel('Reason').fill('invoice lure with a macro');
    await form.getByLabel('If bad').selectOption('block');
    await form.getByRole('button', { name: 'Mark bad' }).click();
    await flash.getByText(/^Marked cluster #990001 bad: block policy P\w+\.$/).waitFor();
    await page.locator('p.verdict[data-verdict="bad"]').getByText('admin:root').waitFor();
    // A new mark replaces the admin's earlier one.
    expect(await pick()).toMatchObject([{ action: 'block', source: 'admin', reason: 'invoice lure with a macro' }]);
    await ctx.close();
  });

  it('lists a message the downstream defers on the Queue page with its last error, retries all with a confirm, and one message once the downstream takes it', async () => {
    const to = 'queue.waiting@fabrikam.com';
    const subject = 'Minutes held up downstream';
    // The sink answers 451 for this recipient only; every other test's mail is untouched.
    sink.behaviour.data = (m) => (m.to.includes(to) ? 451 : undefined);
    try {
      const id = await send(p.port, 'ann.lee@partner.example', [to], clean(subject, to));
      const attempts = async () => (await p.app.store.db.selectFrom('recipients').select(['status', 'attempts']).where('msg_id', '=', id).executeTakeFirstOrThrow());
      await until(async () => (await attempts()).status === 'deferred', 10_000, 'the message deferred');
      const { ctx, page } = await open();
      await signIn(page, 'root', PW.root);
      await page.locator('header nav').getByRole('link', { name: 'Queue' }).click();
      const row = page.locator(`tr[data-id="${id}"]`);
      await row.getByText(to).waitFor();
      await row.getByText('451 4.3.0 later').waitFor();
      expect(await row.getByRole('link', { name: subject }).getAttribute('href')).toBe(`/ui/messages/${id}`);
      await page.locator('.queue-summary').getByText(/recipient\(s\) waiting/).waitFor();
      await shot(page, 'queue');

      await page.getByLabel('Recipient domain').fill('example.org');
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByText('Nothing waiting matches.').waitFor();
      await page.getByLabel('Recipient domain').fill('fabrikam.com');
      await page.getByRole('button', { name: 'Search' }).click();
      await row.getByText(to).waitFor();

      // Retry all asks first; the sink still refuses, so the message waits again after one more attempt.
      await page.getByRole('button', { name: 'Retry all now' }).click();
      await page.getByRole('button', { name: /^Confirm: retry all \d+ now$/ }).click();
      await page.getByRole('status').getByText(/^\d+ recipient\(s\) due now/).waitFor();
      await until(async () => (await attempts()).attempts === 2 && (await attempts()).status === 'deferred', 10_000, 'a second attempt');

      sink.behaviour.data = undefined;
      await page.getByRole('button', { name: 'Refresh' }).click();
      await row.getByRole('button', { name: 'Retry' }).click();
      await page.getByRole('status').getByText(`${id}: 1 recipient(s) due now`, { exact: false }).waitFor();
      await until(async () => (await attempts()).status === 'delivered', 10_000, 'the retried message delivered');
      expect(sink.messages.some((m) => m.to.includes(to))).toBe(true);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await row.waitFor({ state: 'detached' });
      await ctx.close();
    } finally {
      sink.behaviour.data = undefined;
    }
  });

  it('lists events filtered by type, follows new ones as they happen, and links a message to its story', async () => {
    const { ctx, page } = await open();
    await signIn(page, 'root', PW.root);
    await page.locator('header nav').getByRole('link', { name: 'Events' }).click();
    await page.getByRole('heading', { name: 'Events' }).waitFor();
    await page.locator('form.search input[name="type"]').fill('message.accepted');
    await page.locator('form.search').getByRole('button', { name: 'Show' }).click();
    expect(new URL(page.url()).search).toBe('?type=message.accepted');
    const rows = page.locator('table.event-log tbody tr');
    await rows.first().waitFor();
    expect(new Set(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-type'))))).toEqual(new Set(['message.accepted']));
    const before = await rows.count();
    // Following: once the stream is open, a message sent now appears at the top without a reload.
    await page.locator('form.search input[name="follow"]').check();
    await page.getByRole('status').getByText(/^Following: no new event yet/).waitFor();
    const id = await send(p.port, 'ann.lee@partner.example', [ALICE], clean('Followed live', ALICE));
    await page.getByRole('status').getByText(/^Following: 1 new event since/).waitFor({ timeout: 15_000 });
    expect(await rows.count()).toBe(before + 1);
    const top = rows.first();
    expect(await top.getAttribute('data-type')).toBe('message.accepted');
    await shot(page, 'events');
    await top.getByRole('link', { name: id }).click();
    await page.getByText('Followed live').first().waitFor();
    expect(new URL(page.url()).pathname).toBe(`/ui/messages/${id}`);
    await ctx.close();
  });

  it('raised no script error or CSP violation on any page', () => {
    expect(errors).toEqual([]);
  });
});
