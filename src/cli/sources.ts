// postern sources show|list: what the data matrix knows of a sending address, network, HELO name, domain or sender,
// and the live policies that apply to it.
import { args, fmtTime, load, withStore } from './common.ts';
import { getSource, listPolicies, listSources, sourceKind, type PolicyRow, type SourceRow } from '../policy/admin.ts';
import { PolicyTable, type PolicyFacts } from '../policy/live.ts';
import { expiry, outline, span, table, UsageError, usageFailure } from './policies.ts';

const USAGE = `usage: postern sources show <ip|cidr|helo|sender|domain> <key> [--json]
       postern sources list [--kind K] [--order last_seen|unknown|refused|messages] [--limit N] [--json]`;

const ORDERS = ['last_seen', 'unknown', 'refused', 'messages'] as const;

const pct = (x: number) => `${Math.round(x * 100)}%`;

function show(s: SourceRow, policies: PolicyRow[], now: number): string {
  const lines = [
    `source      ${s.kind}:${s.key}`,
    `first seen  ${fmtTime(s.first_seen)} (${span(now - s.first_seen)} ago)`,
    `last seen   ${fmtTime(s.last_seen)} (${span(now - s.last_seen)} ago)`,
    `connections ${s.connections}`,
    `messages    ${s.messages}`,
    `recipients  ${s.recipients}, unknown ${s.unknown_recipients} (${pct(s.unknown_ratio)})`,
    `refused     ${s.refused}`,
    `quarantined ${s.quarantined}`,
    `delivered   ${s.delivered}`,
    `proto errs  ${s.protocol_errors}`,
    `score avg   ${s.score_avg === null ? 'no scored message' : `${s.score_avg.toFixed(2)} over ${s.score_n}`}`,
  ];
  if (Object.keys(s.score_hist).length) lines.push('scores', ...outline(s.score_hist));
  if (Object.keys(s.actions).length) lines.push('actions', ...outline(s.actions));
  lines.push(policies.length ? 'policies' : 'policies    none active');
  for (const p of policies) lines.push(`  ${p.id}  ${p.target_kind}:${p.target}  ${p.action}  ${expiry(p, now)}  ${p.reason}`);
  return lines.join('\n');
}

/** Active policies the gateway would apply to this source: matched as the gateway matches, or by exact target. */
async function policiesFor(db: Parameters<typeof listPolicies>[0], kind: string, key: string, now: number): Promise<PolicyRow[]> {
  const facts: PolicyFacts | undefined = kind === 'ip' ? { ip: key } : kind === 'helo' ? { helo: key } : kind === 'sender' ? { sender: key } : undefined;
  if (!facts) return listPolicies(db, { target: key }, now);
  const live = new PolicyTable(db);
  await live.load(now);
  const ids = new Set(live.match(facts, now).map((p) => p.id));
  return (await listPolicies(db, {}, now)).filter((p) => ids.has(p.id));
}

export async function runSources(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = args(rest, { json: { type: 'boolean' }, kind: { type: 'string' }, order: { type: 'string' }, limit: { type: 'string' } });
    const order = (values.order ?? 'last_seen') as (typeof ORDERS)[number];
    if (!ORDERS.includes(order)) throw new UsageError(`--order "${values.order}" is not one of ${ORDERS.join(', ')}`);
    const limit = values.limit === undefined ? 50 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit "${values.limit}" is not a positive whole number`);
    if (sub === 'show' && positionals.length !== 2) throw new UsageError('show needs <kind> <key>', true);
    if (sub !== 'show' && sub !== 'list') throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed', true);
    try {
      if (sub === 'show') sourceKind(positionals[0]);
      if (values.kind) sourceKind(values.kind);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const loaded = load(values.config);
    return await withStore(loaded, async ({ db }) => {
      const now = Date.now();
      if (sub === 'show') {
        const s = await getSource(db, positionals[0], positionals[1]);
        if (!s) {
          console.error(`postern: no record of ${positionals[0]} ${positionals[1]}`);
          return 1;
        }
        const policies = await policiesFor(db, s.kind, s.key, now);
        console.log(values.json ? JSON.stringify({ ...s, policies }, null, 2) : show(s, policies, now));
        return 0;
      }
      const rows = await listSources(db, { kind: values.kind, order, limit });
      if (values.json) console.log(JSON.stringify(rows, null, 2));
      else if (!rows.length) console.log('no sources recorded');
      else {
        const head = ['SOURCE', 'LAST SEEN', 'CONN', 'MSGS', 'RCPTS', 'UNKNOWN', 'REFUSED', 'QUAR', 'SCORE'];
        const line = (s: SourceRow) => [
          `${s.kind}:${s.key}`,
          `${span(now - s.last_seen)} ago`,
          String(s.connections),
          String(s.messages),
          String(s.recipients),
          `${s.unknown_recipients} (${pct(s.unknown_ratio)})`,
          String(s.refused),
          String(s.quarantined),
          s.score_avg === null ? '-' : s.score_avg.toFixed(1),
        ];
        console.log(table([head, ...rows.map(line)]));
      }
      return 0;
    });
  } catch (err) {
    return usageFailure(err, USAGE);
  }
}
