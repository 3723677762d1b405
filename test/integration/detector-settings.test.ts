// Changing a detector at run time, end to end: an admin lowers the harvest threshold through the API of a running
// Postern and the analyzer (in its thread) blocks a harvester at the new threshold; switches the detector off and a
// second harvester is never blocked; `postern detectors` shows who changed what and resets it to the file's value.
// Only admins change settings; bad values are refused with the schema's reason; every change is an event.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { inProcess } from '../harness/cli.ts';
import { simulateHarvest, type SimTarget } from '../../src/trends/simulate.ts';
import { listPolicies } from '../../src/policy/admin.ts';

const TOKEN = 'api-token-detectors-71c2e9';
const KNOWN = ['alice@localhost', 'bob@localhost', 'carol@localhost'];
let p: TestPostern;
let auditor = '';
let cli: (...args: string[]) => ReturnType<typeof inProcess>;

async function api(method: string, url: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${p.webUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const target = (attackerNet: string): SimTarget => ({ host: '127.0.0.1', port: p.port, domain: 'localhost', known: KNOWN, attackerNet, legitNet: '127.0.2', legitSenders: 2, legitPauseMs: 20 });
const harvestDetector = async () => (await api('GET', '/api/v1/detectors', TOKEN)).json.items.find((d: any) => d.name === 'harvest');

beforeAll(async () => {
  p = await startTestPostern(
    `[web]\napi_token = "${TOKEN}"\n` +
      `[gateway]\ndomains = ["localhost"]\nrecipients = ${JSON.stringify(KNOWN)}\nmax_connections_per_ip = 500\n` +
      `[gateway.greet_pause]\nunknown_ms = 0\nsuspicious_ms = 0\n` +
      `[trends]\npoll_ms = 50\n[trends.harvest]\nip_unknown = 15\n`,
  );
  // The running Postern's store (SQLite in its data directory, or its PostgreSQL schema) and the file's threshold.
  const url = p.app.quarantine.deps.config.store.url;
  const cliConfig = path.join(p.dir, 'cli.toml');
  fs.writeFileSync(cliConfig, `data_dir = ${JSON.stringify(p.dir)}\n${url ? `[store]\nurl = ${JSON.stringify(url)}\n` : ''}[trends.harvest]\nip_unknown = 15\n`);
  cli = (...args: string[]) => inProcess([...args, '--config', cliConfig]);
  const pw = path.join(p.dir, 'pw-audrey');
  fs.writeFileSync(pw, 'audrey password for detectors\n', { mode: 0o600 });
  expect((await cli('user', 'add', 'audrey', '--role', 'auditor', '--password-file', pw)).code).toBe(0);
  auditor = (await cli('user', 'token', 'audrey')).stdout.trim();
});
afterAll(async () => {
  await p?.close();
});

describe('a detector changed at run time', () => {
  it('blocks a harvester at the threshold an admin set through the API', async () => {
    const r = await api('PATCH', '/api/v1/detectors/harvest', TOKEN, { settings: { ip_unknown: 5 } });
    expect(r.status).toBe(200);
    expect(r.json.changed).toEqual([{ key: 'trends.harvest.ip_unknown', from: null, to: 5 }]);
    const t = r.json.detector.thresholds.find((x: any) => x.key === 'trends.harvest.ip_unknown');
    expect(t).toMatchObject({ value: 5, file_value: 15, editable: true, override: { set_by: 'api' } });

    const h = await simulateHarvest(target('127.0.5'), { distributed: false, maxRcpts: 60, after: 5, attacker: '127.0.5.66' });
    expect(h.blocked_after_ms).not.toBeNull();
    // At the file's threshold the block would come after 15 unknown recipients.
    expect(h.unknown_revealed).toBeGreaterThanOrEqual(5);
    expect(h.unknown_revealed).toBeLessThan(15);
    // The gateway's in-line guard refused from the new threshold on; the analyzer's policy takes over from it.
    const [policy] = await until(async () => {
      const l = (await listPolicies(p.app.store.db)).filter((x) => x.target === '127.0.5.66');
      return l.length ? l : undefined;
    }, 5_000, 'the analyzer to block the harvester');
    expect(policy).toMatchObject({ action: 'block', source: 'analyzer:harvest' });
    expect(policy.evidence).toMatchObject({ threshold: 5 });

    const ev = await p.app.store.db.selectFrom('events').selectAll().where('type', '=', 'settings.changed').execute();
    expect(ev.map((e) => JSON.parse(e.data))).toEqual([{ key: 'trends.harvest.ip_unknown', from: null, to: 5, detector: 'harvest', by: 'api' }]);
  });

  it('stops acting when an admin switches the detector off, and the CLI shows and resets it', async () => {
    const off = await api('PATCH', '/api/v1/detectors/harvest', TOKEN, { settings: { enabled: false } });
    expect(off.status).toBe(200);
    expect(off.json.detector).toMatchObject({ enabled: false, switch_override: { set_by: 'api' } });
    // The analyzer reads it at its next poll; give it a few.
    await new Promise((r) => setTimeout(r, 500));
    const h = await simulateHarvest(target('127.0.6'), { distributed: false, maxRcpts: 25, after: 1, attacker: '127.0.6.66' });
    expect(h.unknown_revealed).toBe(25);
    await p.app.analyzer?.drain();
    expect((await listPolicies(p.app.store.db)).filter((x) => x.target === '127.0.6.66')).toEqual([]);

    const list = await cli('detectors', 'list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^harvest: off \(set by api /m);
    expect(list.stdout).toMatch(/ip_unknown\s+5\s+set by api .*\(file: 15\)/);

    const reset = await cli('detectors', 'reset', 'harvest');
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toContain('trends.harvest.enabled: false -> file');
    expect(reset.stdout).toContain('trends.harvest.ip_unknown: 5 -> file');
    // The center's process reads the table every 5 s without an announcement (the CLI has no bus).
    const back = await until(async () => {
      const d = await harvestDetector();
      return d.enabled && !d.switch_override ? d : undefined;
    }, 8_000, 'the reset in the center');
    expect(back.thresholds.find((x: any) => x.key === 'trends.harvest.ip_unknown')).toMatchObject({ value: 15, override: null });

    const set = await cli('detectors', 'set', 'harvest', 'ip_ratio=0.8', 'slow_ip_unknown=30');
    expect(set.code, set.stderr).toBe(0);
    const bad = await cli('detectors', 'set', 'harvest', 'ip_ratio=3');
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/trends\.harvest\.ip_ratio/);
    const notEditable = await cli('detectors', 'set', 'outbreak', 'hold_s=5');
    expect(notEditable.code).toBe(64);
    expect(notEditable.stderr).toMatch(/only the outbreak rule/);
  });

  it('answers bad requests with the reason and lets only admins change anything', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['/api/v1/detectors/harvest', { settings: { ip_unknown: 0 } }, 400, /trends\.harvest\.ip_unknown/],
      ['/api/v1/detectors/harvest', { settings: { ip_unknown: 'lots' } }, 400, /ip_unknown/],
      ['/api/v1/detectors/harvest', { settings: { nope: 3 } }, 400, /trends\.harvest\.nope cannot be changed/],
      ['/api/v1/detectors/harvest', { settings: { constructor: 3 } }, 400, /trends\.harvest\.constructor cannot be changed/],
      ['/api/v1/detectors/harvest', { settings: {} }, 400, /no settings given/],
      ['/api/v1/detectors/harvest', { ip_unknown: 3 }, 400, /body/],
      ['/api/v1/detectors/outbreak', { settings: { enabled: false } }, 400, /only the outbreak rule/],
      ['/api/v1/detectors/nonesuch', { settings: { enabled: false } }, 404, /no detector nonesuch/],
    ];
    for (const [url, body, status, msg] of cases) {
      const r = await api('PATCH', url, TOKEN, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.json.error.message).toMatch(msg);
    }
    const ob = await api('PATCH', '/api/v1/detectors/outbreak', TOKEN, { settings: { min_sources: 5, action: 'block' } });
    expect(ob.status).toBe(200);
    expect(ob.json.detector.thresholds.find((x: any) => x.key === 'outbreak.min_sources')).toMatchObject({ value: 5, override: { set_by: 'api' } });

    const denied = await api('PATCH', '/api/v1/detectors/harvest', auditor, { settings: { ip_unknown: 3 } });
    expect(denied.status).toBe(403);
    expect((await api('GET', '/api/v1/detectors', auditor)).status).toBe(200);
    const none = await fetch(`${p.webUrl}/api/v1/detectors/harvest`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"settings":{"ip_unknown":3}}' });
    expect(none.status).toBe(401);
    // The settings page shows the effective values, the center's changes included.
    const keys = await until(async () => {
      const s = (await api('GET', '/api/v1/settings', TOKEN)).json;
      const k = new Map<string, any>(s.sections.flatMap((x: any) => x.keys.map((k: any) => [k.key, k])));
      // The CLI's change of the test before reaches this process within 5 s.
      return k.get('trends.harvest.ip_ratio').value === 0.8 ? k : undefined;
    }, 8_000, 'the settings page to show the CLI change');
    expect(keys.get('outbreak.min_sources').value).toBe(5);
  });
});
