import { describe, expect, it } from 'vitest';
import { configSchema } from '../../config/schema.ts';
import { Windows } from '../windows.ts';
import type { Alert, DetectorContext, MatrixEvent } from '../detector.ts';
import { loginAnomaly } from './login-anomaly.ts';

const T0 = 1_800_000_000_000;
let id = 0;
const ev = (type: 'auth.failed' | 'auth.succeeded', user: string, ip: string, ts: number): MatrixEvent => ({
  id: ++id,
  ts,
  type,
  ip,
  conn_id: null,
  msg_id: null,
  data: { user, protocol: 'imap' },
});

function setup(over: Record<string, unknown> = {}) {
  const alerts: Alert[] = [];
  const config = configSchema.parse({ trends: { login_anomaly: over } });
  const ctx: DetectorContext = { windows: new Windows(), config, trusted: (ip) => ip.startsWith('10.'), alert: (_d, a) => void alerts.push(a) };
  return { d: loginAnomaly(), ctx, alerts };
}

describe('login anomalies', () => {
  it('alerts on a login that succeeds after a run of failures to the same user, not after a few typos', () => {
    const { d, ctx, alerts } = setup();
    for (let i = 0; i < 4; i++) d.observe(ev('auth.failed', 'alice@example.com', '203.0.113.9', T0 + i * 1000), ctx);
    d.observe(ev('auth.succeeded', 'alice@example.com', '198.51.100.4', T0 + 5_000), ctx);
    expect(alerts).toEqual([]);
    d.observe(ev('auth.failed', 'alice@example.com', '203.0.113.9', T0 + 6_000), ctx);
    d.observe(ev('auth.succeeded', 'alice@example.com', '203.0.113.9', T0 + 7_000), ctx);
    const hit = alerts.find((a) => a.kind === 'success_after_failures');
    expect(hit).toMatchObject({ severity: 'critical', user: 'alice@example.com', ip: '203.0.113.9', evidence: { failures: 5, failing_addresses: ['203.0.113.9'] } });
    // Failures older than the window do not count.
    const { d: d2, ctx: c2, alerts: a2 } = setup({ window_s: 60 });
    for (let i = 0; i < 6; i++) d2.observe(ev('auth.failed', 'bob@example.com', '203.0.113.9', T0 + i), c2);
    d2.observe(ev('auth.succeeded', 'bob@example.com', '198.51.100.4', T0 + 61_000), c2);
    expect(a2.filter((a) => a.kind === 'success_after_failures')).toEqual([]);
  });

  it("alerts on a login from a network never seen for the user, once per network, never for the first or a trusted one", () => {
    const { d, ctx, alerts } = setup();
    d.observe(ev('auth.succeeded', 'carol@example.com', '198.51.100.4', T0), ctx);
    d.observe(ev('auth.succeeded', 'carol@example.com', '198.51.100.77', T0 + 1_000), ctx);
    expect(alerts).toEqual([]);
    d.observe(ev('auth.succeeded', 'carol@example.com', '192.0.2.8', T0 + 2_000), ctx);
    d.observe(ev('auth.succeeded', 'carol@example.com', '192.0.2.9', T0 + 3_000), ctx);
    d.observe(ev('auth.succeeded', 'carol@example.com', '10.1.2.3', T0 + 4_000), ctx);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ kind: 'new_network', severity: 'low', ip: '192.0.2.8', evidence: { network: '192.0.2.0/24', known_networks: ['198.51.100.0/24'] } });
    const off = setup({ new_network: false });
    off.d.observe(ev('auth.succeeded', 'dan@example.com', '198.51.100.4', T0), off.ctx);
    off.d.observe(ev('auth.succeeded', 'dan@example.com', '192.0.2.8', T0 + 1_000), off.ctx);
    expect(off.alerts).toEqual([]);
  });
});
