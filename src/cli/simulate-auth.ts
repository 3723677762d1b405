// postern simulate brute-force|brute-force-distributed|spraying: a password attack on a running Postern's IMAP
// proxy, the legitimate user logging in beside it; prints when Postern stopped it, how many guesses reached the
// mailbox server before, which policy fired, and what the legitimate user lost. Exit 0 when stopped, 1 when not.
import type { Kysely } from 'kysely';
import { fmtTime, withStore } from './common.ts';
import type { LoadedConfig } from '../config/load.ts';
import { splitListen } from '../gateway/server.ts';
import { getPolicy, listPolicies, type PolicyRow } from '../policy/admin.ts';
import type { DB } from '../store/schema.ts';
import { simulateAuthAttack, type AttackEvent, type AttackOracle, type AuthScenario, type AuthSimTarget } from '../monitor/simulate.ts';

export const AUTH_SCENARIOS = ['brute-force', 'brute-force-distributed', 'spraying'] as const;

export const AUTH_USAGE = `usage: postern simulate brute-force|brute-force-distributed|spraying --user U --password P [options]
  --user U --password P      the legitimate user, who logs in once and then every second during the attack;
                             brute-force and brute-force-distributed guess its password
  --host H --port P          the IMAP proxy (default: monitor.imap.listen of the config)
  --attacker-net 127.0.5     first three octets of the attackers' /24 (distributed: and the /24s after it)
  --legit-net 127.0.2        the legitimate user logs in from .10 of this /24
  --guesses N                most guesses (60)
  --after N                  guesses after the first refusal by Postern (5)
  --per-ip N                 brute-force-distributed: guesses per address (2)
  --users a@d,b@d            spraying: the users tried (default: common role names at the user's domain)
  --json                     print the report as JSON`;

export interface AuthValues {
  host?: string;
  port?: string;
  user?: string;
  password?: string;
  'attacker-net'?: string;
  'legit-net'?: string;
  guesses?: string;
  after?: string;
  'per-ip'?: string;
  users?: string;
  json?: boolean;
}

/** Returns the exit code: 0 stopped, 1 not stopped, 64 bad options. */
export async function runAuthSimulate(scenario: AuthScenario, v: AuthValues, loaded: LoadedConfig): Promise<number> {
  const bad = (msg: string) => {
    console.error(`postern: ${msg}\n\n${AUTH_USAGE}`);
    return 64;
  };
  if (!v.user || v.password === undefined) return bad('--user and --password are required: the legitimate user logs in beside the attack');
  const imap = loaded.config.monitor.imap;
  if (!imap.enabled && !v.port) return bad(`the IMAP proxy is off in ${loaded.file} (monitor.imap.enabled); start it or pass --host and --port`);
  const listen = splitListen(imap.listen);
  const num = (name: string, raw: string | undefined, d: number, min: number) => {
    if (raw === undefined) return d;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be a whole number, at least ${min}; got "${raw}"`);
    return n;
  };
  const net = (name: string, raw: string | undefined, d: string) => {
    const n = raw ?? d;
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(n) || n.split('.').some((x) => Number(x) > 255)) throw new RangeError(`--${name} "${n}" is not the first three octets of an IPv4 network, e.g. 127.0.5`);
    return n;
  };
  let opts: { port: number; maxGuesses: number; after: number; perIp: number; attackerNet: string; legitNet: string };
  try {
    opts = {
      port: num('port', v.port, listen.port, 1),
      maxGuesses: num('guesses', v.guesses, 60, 1),
      after: num('after', v.after, 5, 0),
      perIp: num('per-ip', v['per-ip'], 2, 1),
      attackerNet: net('attacker-net', v['attacker-net'], '127.0.5'),
      legitNet: net('legit-net', v['legit-net'], '127.0.2'),
    };
    if (opts.port > 65_535) throw new RangeError(`--port must be at most 65535; got "${v.port}"`);
  } catch (err) {
    if (err instanceof RangeError) return bad(err.message);
    throw err;
  }
  if (opts.attackerNet === opts.legitNet) return bad('--attacker-net and --legit-net must differ: the legitimate user is not one of the attackers');
  const users = v.users?.split(',').map((u) => u.trim()).filter(Boolean);
  if (v.users !== undefined && !users?.length) return bad('--users lists no user');
  const host = v.host ?? (listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host);
  const say = (line: string) => !v.json && console.log(`${fmtTime(Date.now())}  ${line}`);
  return withStore(loaded, async (store) => {
    const started = Date.now();
    const t: AuthSimTarget = {
      host,
      port: opts.port,
      user: v.user!,
      password: v.password!,
      legitIp: `${opts.legitNet}.10`,
      attackerNet: opts.attackerNet,
      legitEveryMs: 1_000,
      oracle: storeOracle(store.db),
      onStep: say,
    };
    say(`${scenario} against ${host}:${opts.port} from ${opts.attackerNet}.0/24; ${t.user} logs in from ${t.legitIp} every second`);
    const report = await simulateAuthAttack(t, scenario, { maxGuesses: opts.maxGuesses, after: opts.after, perIp: opts.perIp, users });
    const first = report.first_refusal?.policy ? await getPolicy(store.db, report.first_refusal.policy) : undefined;
    const fired: PolicyRow[] = (await listPolicies(store.db)).filter((p) => p.created_at >= started - 1_000 && p.source.startsWith('analyzer:'));
    if (v.json) {
      console.log(JSON.stringify({ ...report, policy: first ?? null, policies: fired }, null, 2));
      return report.stopped ? 0 : 1;
    }
    for (const p of first && !fired.some((f) => f.id === first.id) ? [first, ...fired] : fired) {
      console.log(`${fmtTime(p.created_at)}  policy ${p.id} ${p.id === first?.id ? 'stopped the attack' : 'fired'}: ${p.target_kind}:${p.target} ${p.action}${p.expires_at ? ` until ${fmtTime(p.expires_at)}` : ''} (${p.reason})`);
    }
    const r = report;
    console.log(
      r.stopped
        ? `attacker: stopped after ${(r.stopped_after_ms! / 1000).toFixed(1)} s, when ${r.reached_server_before_stop} guesses had reached the mailbox server (${r.first_refusal!.at === 'connect' ? 'refused at connect' : 'refused at login'}); ${r.guesses} guesses from ${r.addresses_used} address(es), ${r.reached_server} reached the server, ${r.refused_by_postern} refused by Postern`
        : `attacker: NOT stopped: ${r.guesses} guesses from ${r.addresses_used} address(es), all ${r.reached_server} answered by the mailbox server`,
    );
    if (r.succeeded) console.log(`attacker: ${r.succeeded} guess(es) logged in`);
    const l = r.legit;
    console.log(`legitimate user: ${l.logins} logins, ${l.ok} ok, ${l.failed} failed, ${l.errors} connection errors${l.samples.length ? ` (${l.samples.join('; ')})` : ''}`);
    return r.stopped ? 0 : 1;
  });
}

/** Postern's record of the attack's addresses: login events and refusals at connect and login, from the store. */
export function storeOracle(db: Kysely<DB>): AttackOracle {
  return {
    async events(since: number, ips: readonly string[]): Promise<AttackEvent[]> {
      if (!ips.length) return [];
      const rows = await db
        .selectFrom('events')
        .select(['id', 'ts', 'type', 'ip', 'data'])
        .where('ts', '>=', since)
        .where('type', 'in', ['auth.failed', 'auth.succeeded', 'imap.login.refused', 'imap.connect.refused'])
        .where('ip', 'in', [...ips])
        .orderBy('id')
        .execute();
      const out: AttackEvent[] = [];
      for (const r of rows) {
        let d: Record<string, unknown>;
        try {
          d = JSON.parse(r.data) as Record<string, unknown>;
        } catch {
          continue;
        }
        const user = typeof d.user === 'string' ? d.user : null;
        const base = { id: Number(r.id), ts: Number(r.ts), ip: r.ip ?? '' };
        if (r.type === 'imap.connect.refused') out.push({ ...base, user: null, by: 'postern', ok: false, policy: str(d.policy) });
        else if (r.type === 'imap.login.refused') out.push({ ...base, user, by: 'postern', ok: false, policy: str(d.policy) });
        else if (d.protocol !== 'imap') continue;
        else if (r.type === 'auth.failed' && d.refused_by !== undefined) out.push({ ...base, user, by: 'postern', ok: false, policy: str(d.refused_by) });
        else out.push({ ...base, user, by: 'server', ok: r.type === 'auth.succeeded', policy: null });
      }
      return out;
    },
  };
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
