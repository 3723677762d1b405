// The center's Settings and Detectors APIs over real HTTP to a running Postern: every key with its value, default,
// change mark and description by section; secrets of every form (a string, { env }, a key in an array of tables,
// the previous link keys, a URL's password) never in the body, only what they are; the detectors with their
// thresholds from the effective config and the policies each wrote in the last 24 hours; admins and auditors only.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../harness/postern.ts';
import { inProcess } from '../harness/cli.ts';

const TOKEN = 'api-token-settings-5b8e1c';
const LINK = 'link-secret-settings-0123456789abcdef-zz';
const PREVIOUS = 'previous-link-key-settings-9876543210-yy';
const WEBMAIL = 'webmail-key-settings-44d1';
const REDIS_PW = 'redis-pass-settings-7e2';
const ENV = 'POSTERN_TEST_SETTINGS_DB_PASSWORD';
const DB_PW = 'db-password-from-env-settings-a91f';

let p: TestPostern;
const tokens: Record<'auditor' | 'user', string> = { auditor: '', user: '' };

async function api(url: string, token?: string): Promise<{ status: number; text: string; json: any }> {
  const res = await fetch(`${p.webUrl}${url}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  process.env[ENV] = DB_PW;
  p = await startTestPostern(
    `[web]\napi_token = "${TOKEN}"\n` +
      `[quarantine]\nlink_secret = "${LINK}"\nlink_secret_previous = ["${PREVIOUS}"]\n` +
      `[store]\npassword = { env = "${ENV}" }\n` +
      `[matrix]\nredis_url = "redis://:${REDIS_PW}@127.0.0.1:6379"\n` +
      `[monitor.webmail]\nenabled = true\nkeys = [{ name = "roundcube", key = "${WEBMAIL}" }]\n` +
      `[trends]\nenabled = false\n[trends.harvest]\nip_unknown = 7\n[outbreak]\nmin_sources = 4\n`,
    { store: 'sqlite' },
  );
  const cliConfig = path.join(p.dir, 'cli.toml');
  fs.writeFileSync(cliConfig, `data_dir = ${JSON.stringify(p.dir)}\n`);
  const cli = (...args: string[]) => inProcess([...args, '--config', cliConfig]);
  for (const [name, role] of [['audrey', 'auditor'], ['ulla', 'user']] as const) {
    const pw = path.join(p.dir, `pw-${name}`);
    fs.writeFileSync(pw, `${name} password for settings\n`, { mode: 0o600 });
    const added = await cli('user', 'add', name, '--role', role, ...(role === 'user' ? ['--address', 'ulla@example.org'] : []), '--password-file', pw);
    expect(added.code, added.stderr).toBe(0);
    const made = await cli('user', 'token', name);
    expect(made.code, made.stderr).toBe(0);
    tokens[role] = made.stdout.trim();
  }
});
afterAll(async () => {
  await p?.close();
  delete process.env[ENV];
});

describe('GET /api/v1/settings', () => {
  it('answers every key by section with its value, default, change and description', async () => {
    const r = await api('/api/v1/settings', TOKEN);
    expect(r.status).toBe(200);
    const s = r.json;
    expect(s.config_file).toBe(path.join(p.dir, 'postern.toml'));
    expect(s.data_dir).toBe(p.dir);
    expect(s.sections.map((x: any) => x.name)).toEqual(['', 'gateway', 'relay', 'analysis', 'policy', 'quarantine', 'web', 'store', 'matrix', 'trends', 'outbound', 'monitor', 'similarity', 'outbreak', 'log']);
    const keys = new Map<string, any>(s.sections.flatMap((x: any) => x.keys.map((k: any) => [k.key, { ...k, section: x.name }])));
    expect(keys.get('data_dir')).toMatchObject({ section: '', value: p.dir, default: './data', changed: true, type: 'string' });
    expect(keys.get('trends.harvest.ip_unknown')).toMatchObject({ section: 'trends', value: 7, default: 15, changed: true, secret: false });
    expect(keys.get('trends.harvest.ip_unknown').description).toMatch(/^Unknown recipients from one address/);
    expect(keys.get('gateway.listen')).toMatchObject({ value: '127.0.0.1:2525', default: '127.0.0.1:2525', changed: false });
    expect(keys.get('analysis.actions.reject')).toMatchObject({ value: 15, default: 15, changed: false });
    expect(keys.get('store.event_retention_by_type')).toMatchObject({ changed: false, value: expect.objectContaining({ 'smtp.connect': 7 }) });
    // An optional table that is not written is one key, unset.
    expect(keys.get('relay.downstream')).toMatchObject({ value: null, default: null, changed: false });
    // Every key of the schema carries its description.
    const bare = [...keys.values()].filter((k) => !k.description).map((k) => k.key);
    expect(bare).toEqual([]);
  });

  it('never answers a secret, only whether and where it is set', async () => {
    const r = await api('/api/v1/settings', TOKEN);
    for (const secret of [TOKEN, LINK, PREVIOUS, WEBMAIL, REDIS_PW, DB_PW]) expect(r.text.includes(secret), secret).toBe(false);
    const keys = new Map<string, any>(r.json.sections.flatMap((x: any) => x.keys.map((k: any) => [k.key, k])));
    expect(keys.get('web.api_token')).toMatchObject({ value: '(set)', default: '(not set)', changed: true, secret: true });
    expect(keys.get('quarantine.link_secret')).toMatchObject({ value: '(set)', changed: true, secret: true });
    expect(keys.get('quarantine.link_secret_previous')).toMatchObject({ value: ['(set)'], default: [], changed: true, secret: true });
    expect(keys.get('store.password')).toMatchObject({ value: `(from env ${ENV})`, changed: true, secret: true });
    expect(keys.get('web.metrics.token')).toMatchObject({ value: '(not set)', default: '(not set)', changed: false, secret: true });
    expect(keys.get('outbreak.pullback.master_password')).toMatchObject({ value: '(not set)', secret: true });
    expect(keys.get('monitor.webmail.keys')).toMatchObject({ value: [{ name: 'roundcube', key: '(set)' }], changed: true });
    expect(keys.get('matrix.redis_url')).toMatchObject({ value: 'redis://:(set)@127.0.0.1:6379', changed: true });
  });

  it('is for admins and auditors: a user account gets 403, no credentials 401', async () => {
    const audit = await api('/api/v1/settings', tokens.auditor);
    expect(audit.status).toBe(200);
    expect(audit.text.includes(TOKEN)).toBe(false);
    const user = await api('/api/v1/settings', tokens.user);
    expect([user.status, user.json.error.code]).toEqual([403, 'forbidden']);
    expect((await api('/api/v1/settings')).status).toBe(401);
  });
});

describe('GET /api/v1/detectors', () => {
  it("lists the detectors with their thresholds from the effective config and the policies each wrote in 24 hours", async () => {
    const now = Date.now();
    let n = 0;
    const row = (source: string, created_at: number) => ({
      id: `P${String(++n).padStart(20, '0')}`,
      target_kind: 'ip',
      target: `192.0.2.${n}`,
      action: 'block',
      params: '{}',
      reason: 'test',
      evidence: '{}',
      created_at,
      expires_at: null,
      pinned: 0,
      source,
    });
    await p.app.store.db
      .insertInto('policies')
      .values([row('analyzer:harvest', now - 60_000), row('analyzer:harvest', now - 3_600_000), row('analyzer:harvest', now - 25 * 3_600_000), row('analyzer:outbreak', now - 1000), row('admin', now)])
      .execute();
    const r = await api('/api/v1/detectors', tokens.auditor);
    expect(r.status).toBe(200);
    const d = r.json;
    expect(d.analyzer_enabled).toBe(false);
    // Every table under [trends] with a switch, then the outbreak detector: the order the analyzer runs them in.
    const settings = (await api('/api/v1/settings', TOKEN)).json;
    const switches = settings.sections.find((x: any) => x.name === 'trends').keys.filter((k: any) => /^trends\.\w+\.enabled$/.test(k.key)).map((k: any) => k.key.split('.')[1]);
    expect(d.items.map((x: any) => x.name)).toEqual([...switches, 'outbreak']);
    const byName = new Map<string, any>(d.items.map((x: any) => [x.name, x]));
    expect(['harvest', 'flood', 'reputation', 'backscatter', 'brute_force', 'outbreak'].map((x) => [x, byName.get(x)?.enabled, byName.get(x)?.policies_24h])).toEqual([
      ['harvest', true, 2],
      ['flood', true, 0],
      ['reputation', true, 0],
      ['backscatter', true, 0],
      ['brute_force', true, 0],
      ['outbreak', true, 1],
    ]);
    for (const x of d.items) expect(x.summary, x.name).not.toBe('');
    const harvest = byName.get('harvest');
    expect(harvest.switch).toBe('trends.harvest.enabled');
    expect(harvest.thresholds.find((t: any) => t.key === 'trends.harvest.ip_unknown')).toMatchObject({ value: 7, default: 15, changed: true, description: expect.stringMatching(/^Unknown recipients/) });
    expect(harvest.thresholds.map((t: any) => t.key)).not.toContain('trends.harvest.enabled');
    const outbreak = byName.get('outbreak');
    expect(outbreak.thresholds.map((t: any) => t.key.replace('outbreak.', ''))).toEqual(['suspicious_score', 'min_members', 'min_sources', 'min_recipients', 'min_suspicious_share', 'burst_min', 'action', 'policy_ttl_h']);
    expect(outbreak.thresholds.find((t: any) => t.key === 'outbreak.min_sources')).toMatchObject({ value: 4, default: 3, changed: true });
    expect((await api('/api/v1/detectors', tokens.user)).status).toBe(403);
  });
});
