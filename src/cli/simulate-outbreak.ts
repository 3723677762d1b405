// postern simulate outbreak: a campaign of variants from many sources, interleaved with ordinary mail, through a
// running gateway; then, from the store it shares with the gateway, what the outbreak detection did with it.
import { fmtTime, withStore } from './common.ts';
import type { LoadedConfig } from '../config/load.ts';
import { splitListen } from '../gateway/server.ts';
import { simulateOutbreak, type OutbreakReport } from '../retro/simulate.ts';

export const OUTBREAK_USAGE = `usage: postern simulate outbreak [options]
  --host H --port P          the gateway (default: gateway.listen of the config)
  --domain D                 a domain it accepts (default: the first of gateway.domains)
  --known a@d,b@d            existing recipients (default: gateway.recipients)
  --variants N               campaign variants, each from its own address (40)
  --ordinary N               ordinary messages after each variant (1)
  --attacker-net 127.0.7     first three octets of the campaign's sources (loopback: every 127.x.y.z is local)
  --legit-net 127.0.3        the ordinary senders' /24
  --pace MS                  pause between two messages (100)
  --settle S                 seconds to wait for the pull-back after the last message (15)
  --json                     print the report as JSON`;

export async function runOutbreakSimulate(values: Record<string, string | boolean | undefined>, loaded: LoadedConfig): Promise<number> {
  const { config } = loaded;
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const listen = splitListen(config.gateway.listen);
  const domain = str('domain') ?? config.gateway.domains[0] ?? 'localhost';
  const known = str('known') ? (str('known') as string).split(',') : config.gateway.recipients.filter((r) => r.toLowerCase().endsWith('@' + domain));
  if (!known.length) {
    console.error(`postern: the simulation needs existing recipients of ${domain}: list them in gateway.recipients or pass --known`);
    return 64;
  }
  const net = (v: string | undefined, d: string) => {
    const n = v ?? d;
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(n)) throw new Error(`"${n}" is not the first three octets of an IPv4 network, e.g. 127.0.7`);
    return n;
  };
  const num = (k: string, d: number, min: number) => {
    const v = str(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be a whole number of at least ${min}, not "${v}"`);
    return n;
  };
  const json = values.json === true;
  const o = {
    host: str('host') ?? (listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host),
    port: Number(str('port') ?? listen.port),
    domain,
    known,
    variants: num('variants', 40, 1),
    ordinaryPerVariant: num('ordinary', 1, 0),
    attackerNet: net(str('attacker-net'), '127.0.7'),
    legitNet: net(str('legit-net'), '127.0.3'),
    paceMs: num('pace', 100, 0),
    settleMs: num('settle', 15, 0) * 1000,
    onStep: json ? undefined : (line: string) => console.log(`${fmtTime(Date.now())}  ${line}`),
  };
  if (!json) console.log(`${fmtTime(Date.now())}  outbreak against ${o.host}:${o.port}: ${o.variants} variants from ${o.attackerNet}.0/24, ordinary mail from ${o.legitNet}.0/24`);
  const report = await withStore(loaded, (s) => simulateOutbreak(o, s.db));
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(renderOutbreakReport(report));
  return 0;
}

export function renderOutbreakReport(r: OutbreakReport): string {
  const ok = (b: boolean) => (b ? 'met' : 'NOT MET');
  return [
    `campaign: ${r.campaign.sent} sent, ${r.campaign.accepted} accepted, ${r.campaign.deferred} deferred, ${r.campaign.refused} refused`,
    `ordinary: ${r.ordinary.sent} sent, ${r.ordinary.accepted} accepted, ${r.ordinary.deferred} deferred, ${r.ordinary.refused} refused`,
    r.cluster === null ? 'cluster: none found' : `cluster ${r.cluster}: ${r.declared_at ? `declared at ${r.declared_at}, after ${r.declared_after_variants} variants` : 'not declared'}`,
    `copies delivered before the declaration: ${r.delivered_before_declaration} (target at most 3: ${ok(r.targets.delivered_before_declaration)})`,
    `copies held in line: ${r.held_in_line}; delivered: ${r.delivered}, pulled back: ${r.pulled_back}${r.pullback_ms === null ? '' : `, the last ${(r.pullback_ms / 1000).toFixed(2)} s after the declaration`} (target every one within 5 s: ${ok(r.targets.pullback_within_5s)})`,
    `ordinary messages held: ${r.ordinary_held.length}${r.ordinary_held.length ? ` (${r.ordinary_held.join('; ')})` : ''} (target none: ${ok(r.targets.no_ordinary_held)})`,
  ].join('\n');
}
