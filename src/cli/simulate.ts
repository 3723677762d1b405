// postern simulate: replays an attack over real sockets against a running gateway, with legitimate mail beside it,
// and prints when the gateway began refusing, which policy fired, what legitimate senders lost and, on request,
// when the policy lifted.
import { args, fmtTime, load, withStore } from './common.ts';
import { splitListen } from '../gateway/server.ts';
import { listPolicies, type PolicyRow } from '../policy/admin.ts';
import { simulateFlood, simulateHarvest, waitLifted, type SimTarget } from '../trends/simulate.ts';
import { AUTH_SCENARIOS, AUTH_USAGE, runAuthSimulate } from './simulate-auth.ts';
import { OUTBREAK_USAGE, runOutbreakSimulate } from './simulate-outbreak.ts';

const USAGE = `usage: postern simulate harvest|harvest-distributed|flood [options]
  --host H --port P          the gateway (default: gateway.listen of the config)
  --domain D                 a domain it accepts (default: the first of gateway.domains)
  --known a@d,b@d            existing recipients for the legitimate senders (default: gateway.recipients)
  --attacker-net 127.0.5     first three octets of the attackers' /24 (loopback: every 127.x.y.z is local)
  --legit-net 127.0.2        the legitimate senders' /24
  --legit-senders N          legitimate senders running beside the attack (3)
  --messages N               flood: messages to send (300)
  --wait-lift S              then probe every second, up to S seconds, until the attacker is accepted again
  --json                     print the report as JSON

${AUTH_USAGE}

${OUTBREAK_USAGE}`;

export async function runSimulate(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    domain: { type: 'string' },
    known: { type: 'string' },
    'attacker-net': { type: 'string' },
    'legit-net': { type: 'string' },
    'legit-senders': { type: 'string' },
    messages: { type: 'string' },
    'wait-lift': { type: 'string' },
    json: { type: 'boolean' },
    // The password attacks' (simulate-auth.ts).
    user: { type: 'string' },
    password: { type: 'string' },
    guesses: { type: 'string' },
    after: { type: 'string' },
    'per-ip': { type: 'string' },
    users: { type: 'string' },
    // The outbreak's (simulate-outbreak.ts).
    variants: { type: 'string' },
    ordinary: { type: 'string' },
    pace: { type: 'string' },
    settle: { type: 'string' },
  });
  const scenario = positionals[0];
  if ((AUTH_SCENARIOS as readonly string[]).includes(scenario ?? '')) {
    return runAuthSimulate(scenario as (typeof AUTH_SCENARIOS)[number], values, load(values.config));
  }
  if (scenario === 'outbreak') return runOutbreakSimulate(values, load(values.config));
  if (scenario !== 'harvest' && scenario !== 'harvest-distributed' && scenario !== 'flood') {
    console.error(USAGE);
    return 64;
  }
  const loaded = load(values.config);
  const { config } = loaded;
  const listen = splitListen(config.gateway.listen);
  const domain = values.domain ?? config.gateway.domains[0] ?? 'localhost';
  const known = values.known ? values.known.split(',') : config.gateway.recipients.filter((r) => r.toLowerCase().endsWith('@' + domain));
  if (!known.length) {
    console.error(`postern: the simulation needs existing recipients of ${domain}: list them in gateway.recipients or pass --known`);
    return 64;
  }
  const net = (v: string | undefined, d: string) => {
    const n = v ?? d;
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(n)) throw new Error(`"${n}" is not the first three octets of an IPv4 network, e.g. 127.0.5`);
    return n;
  };
  const t: SimTarget = {
    host: values.host ?? (listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host),
    port: Number(values.port ?? listen.port),
    domain,
    known,
    attackerNet: net(values['attacker-net'], '127.0.5'),
    legitNet: net(values['legit-net'], '127.0.2'),
    legitSenders: Number(values['legit-senders'] ?? 3),
    legitPauseMs: 50,
    onStep: values.json ? undefined : (line) => console.log(`${fmtTime(Date.now())}  ${line}`),
  };
  const started = Date.now();
  if (!values.json) console.log(`${fmtTime(started)}  ${scenario} against ${t.host}:${t.port} from ${t.attackerNet}.0/24; legitimate mail from ${t.legitNet}.0/24`);
  const report =
    scenario === 'flood'
      ? await simulateFlood(t, { messages: Number(values.messages ?? 300), attacker: `${t.attackerNet}.77` })
      : await simulateHarvest(t, { distributed: scenario === 'harvest-distributed', attacker: `${t.attackerNet}.66` });
  // The policies the analyzer wrote meanwhile, read from the store the gateway shares with this command.
  const fired: PolicyRow[] = await withStore(loaded, async (s) => {
    const end = Date.now() + 3_000;
    for (;;) {
      const ps = (await listPolicies(s.db)).filter((p) => p.created_at >= started - 1000 && p.source.startsWith('analyzer:'));
      if (ps.length || Date.now() > end) return ps;
      await new Promise((r) => setTimeout(r, 250));
    }
  }).catch(() => []);
  let lifted: number | null | undefined;
  if (values['wait-lift']) {
    const probeIp = scenario === 'flood' ? `${t.attackerNet}.77` : scenario === 'harvest' ? `${t.attackerNet}.66` : `${t.attackerNet}.250`;
    if (!values.json) console.log(`${fmtTime(Date.now())}  waiting up to ${values['wait-lift']} s for ${probeIp} to be accepted again`);
    lifted = await waitLifted(t, probeIp, Number(values['wait-lift']) * 1000);
  }
  if (values.json) {
    console.log(JSON.stringify({ ...report, policies: fired, lifted_after_ms: lifted }, null, 2));
    return 0;
  }
  for (const p of fired) console.log(`${fmtTime(p.created_at)}  policy ${p.id} fired: ${p.target_kind}:${p.target} ${p.action}${p.expires_at ? ` until ${fmtTime(p.expires_at)}` : ''} (${p.reason})`);
  if ('unknown_revealed' in report) {
    console.log(`attacker: ${report.unknown_revealed} unknown recipients revealed, ${report.refused_after_block} refused after the block, ${report.addresses_used} address(es) used`);
  } else {
    console.log(`attacker: ${report.sent} messages tried, ${report.accepted} accepted (${report.accepted_before_throttle} before the throttle), ${report.deferred} deferred, ${report.refused} refused`);
  }
  const l = report.legit;
  console.log(`legitimate senders: ${l.sent} sent, ${l.accepted} accepted, ${l.deferred} deferred, ${l.refused} refused, ${l.errors} connection errors`);
  if (lifted !== undefined) console.log(lifted === null ? 'not lifted within the wait' : `lifted after ${(lifted / 1000).toFixed(1)} s`);
  return 0;
}
