// What the outbreak tests share: the users and gateway config a campaign runs against, a real Dovecot that takes the
// relay's LMTP and lets the pullback in as a master user, and the few steps a test takes to send copies and read the
// events they leave.
import { expect } from 'vitest';
import { until, type TestPostern } from './postern.ts';
import { startDovecot, type Dovecot } from './dovecot.ts';
import { SimClient } from '../../src/trends/sim-client.ts';
import { campaignVariant } from '../../src/retro/simulate.ts';

/** The known recipients; every campaign copy and ordinary message goes to one of them. */
export const KNOWN = ['alice@localhost', 'bob@localhost', 'carol@localhost', 'dave@localhost'];

/** Gateway config for a campaign: no greet pause, room for many connections, an analyzer that polls often. */
export const BASE = `
[gateway]
domains = ["localhost"]
recipients = ${JSON.stringify(KNOWN)}
max_connections_per_ip = 500

[gateway.greet_pause]
unknown_ms = 0
suspicious_ms = 0

[trends]
poll_ms = 50
`;

/** Each known user's own Dovecot password. */
export const MAILBOX_PASS = 'Mailbox-Pass-1';
const MASTER = { user: 'postern', password: 'Master-Pass-9' };

/** A Dovecot holding the known users' mailboxes, with LMTP for the relay and a master user for the pullback. */
export function startOutbreakDovecot(): Promise<Dovecot> {
  const users = Object.fromEntries(KNOWN.map((u) => [u, MAILBOX_PASS]));
  return startDovecot({ users, authFailureDelayS: 0, noPenalty: true, lmtp: true, master: MASTER });
}

/** BASE plus the relay into Dovecot over LMTP and the pullback over IMAP with the master user. */
export function dovecotConfig(dv: Dovecot): string {
  return `${BASE}
[relay.downstream]
host = "127.0.0.1"
port = ${dv.lmtpPort}
protocol = "lmtp"
tls = "none"

[outbreak.pullback]
host = "127.0.0.1"
port = ${dv.imapPort}
tls = "none"
master_user = "${MASTER.user}"
master_password = "${MASTER.password}"
`;
}

/** One message over SMTP from a chosen loopback address; the final reply and the queue id it names. */
export async function send(port: number, ip: string, from: string, to: string, body: string): Promise<{ reply: string; id: string | null }> {
  const c = await SimClient.connect('127.0.0.1', port, ip);
  try {
    await c.reply();
    await c.cmd(`EHLO mx.${from.split('@')[1]}`);
    const m = await c.cmd(`MAIL FROM:<${from}>`);
    if (!m.startsWith('250')) return { reply: m, id: null };
    const r = await c.cmd(`RCPT TO:<${to}>`);
    if (!r.startsWith('250')) return { reply: r, id: null };
    const reply = await c.data(body);
    return { reply, id: /queued as (\S+)/.exec(reply)?.[1] ?? null };
  } finally {
    c.quit();
  }
}

/** Campaign copy i from its own source address to a known user. */
export function copy(p: TestPostern, i: number, ip = `127.0.7.${10 + i}`) {
  const rcpt = KNOWN[i % KNOWN.length];
  const v = campaignVariant(i, rcpt, 'localhost');
  return send(p.port, ip, v.from, rcpt, v.body);
}

/** The events of one type so far, oldest first, after the sink has written what it holds. */
export async function events(p: TestPostern, type: string): Promise<{ msg_id: string | null; data: Record<string, unknown> }[]> {
  await p.app.sink.flush();
  const rows = await p.app.store.db.selectFrom('events').select(['msg_id', 'data']).where('type', '=', type).orderBy('id').execute();
  return rows.map((r) => ({ msg_id: r.msg_id, data: JSON.parse(r.data) as Record<string, unknown> }));
}

/** Sends copies from new addresses until the analyzer declares the cluster; returns its id. */
export async function declare(p: TestPostern, from: number): Promise<number> {
  for (let i = from; i < from + 3; i++) expect((await copy(p, i)).reply).toMatch(/^250 /);
  const declared = await until(async () => (await events(p, 'outbreak.declared'))[0], 8_000, 'outbreak.declared');
  return declared.data.cluster as number;
}

/** The names of the symbols a stored message was scored with. */
export async function symbolsOf(p: TestPostern, id: string): Promise<string[]> {
  const m = await p.app.store.db.selectFrom('messages').select('symbols').where('id', '=', id).executeTakeFirstOrThrow();
  return (JSON.parse(m.symbols) as { name: string }[]).map((s) => s.name);
}
