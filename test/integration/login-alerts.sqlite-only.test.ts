// Login alerts end to end: logins reported by the webmail collector reach the trend analyzer, which raises a
// "likely compromise" alert for a success after a run of failures and a low one for a new network; the center's
// alerts API lists them.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { WEBMAIL_PATH } from '../../src/monitor/collector/webmail.ts';

const KEY = 'webmail-key-for-the-alert-test';
const TOKEN = 'api-token-for-the-alert-test';
let pt: TestPostern | undefined;
afterEach(async () => {
  await pt?.close();
  pt = undefined;
});

describe('login alerts', () => {
  it('alerts on a success after failures and on a new network, and the alerts API lists them', async () => {
    pt = await startTestPostern(`[web]\napi_token = "${TOKEN}"\n[monitor.webmail]\nenabled = true\nkeys = [{ name = "rc", key = "${KEY}" }]\n[trends]\npoll_ms = 50\n`);
    const p = pt;
    const post = async (body: unknown) => {
      const r = await fetch(`${p.webUrl}${WEBMAIL_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(r.status).toBe(200);
    };
    await post({ type: 'login', user: 'erin@localhost', client_ip: '198.51.100.4' });
    await post(Array.from({ length: 6 }, () => ({ type: 'login_failed', user: 'erin@localhost', client_ip: '203.0.113.50' })));
    await post({ type: 'login', user: 'erin@localhost', client_ip: '203.0.113.50' });
    const alerts = await until(async () => {
      const r = await fetch(`${p.webUrl}/api/v1/alerts`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const j = (await r.json()) as { items: { type: string; severity: string; summary: string; data: Record<string, unknown> }[] };
      const mine = j.items.filter((a) => a.type === 'trends.alert');
      return mine.length >= 2 ? mine : undefined;
    }, 15_000, 'the two login alerts');
    const byKind = Object.fromEntries(alerts.map((a) => [a.data.kind, a]));
    expect(byKind.success_after_failures).toMatchObject({ severity: 'critical', data: { user: 'erin@localhost', ip: '203.0.113.50', evidence: { failures: 6 } } });
    expect(byKind.success_after_failures.summary).toMatch(/after 6 failed logins/);
    expect(byKind.new_network).toMatchObject({ severity: 'low', data: { ip: '203.0.113.50', evidence: { network: '203.0.113.0/24' } } });
  });
});
