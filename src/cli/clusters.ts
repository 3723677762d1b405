// postern clusters list|show|mark: the similarity clusters the outbreak detector watches, one cluster's story (its
// members, what was done to each copy, where copies went out to), and an admin's verdict on it. A mark is a policy in
// the store, which the running Postern reads within a second.
import { args, fmtTime, load, withStore } from './common.ts';
import { expiry, span, table, usageFailure, UsageError } from './policies.ts';
import { sinceTime } from './audit.ts';
import { cliActor } from './quarantine.ts';
import { silentLogger } from '../core/log.ts';
import { EventSink } from '../matrix/sink.ts';
import {
  CLUSTER_STATES,
  ClusterError,
  listClusters,
  markCluster,
  showCluster,
  type ClusterDetail,
  type ClusterEvent,
  type ClusterSummary,
  type MemberRecipient,
} from '../similarity/report.ts';

const USAGE = `usage: postern clusters list [--state watching|outbreak|safe] [--since 24h|ISO-TIME] [--limit N] [--json]
       postern clusters show <id> [--json]
       postern clusters mark <id> safe|bad [--reason TEXT] [--action quarantine|block]
mark safe: no outbreak (a declaration is lifted; its copies are judged like any other mail); mark bad: its copies
are held in quarantine (--action block: refused). A new mark replaces the last one.`;

const OPTIONS = {
  state: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  reason: { type: 'string' },
  action: { type: 'string' },
} as const;

const ACTIONS = ['quarantine', 'block'] as const;

/** Sender-chosen text on one line: control characters must not move the terminal's cursor. */
const cell = (s: string | null | undefined, max = 60) => {
  const flat = (s ?? '').replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

function clusterId(text: string | undefined, sub: string): number {
  if (!text) throw new UsageError(`${sub} needs a cluster id`, true);
  if (!/^[1-9]\d{0,18}$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`cluster id "${text}" is not a whole number (postern clusters list shows the ids)`);
  return Number(text);
}

const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

/** What a retroactive action did to one copy, in a few words. */
function retroText(e: ClusterEvent): string {
  const d = e.data;
  switch (e.type) {
    case 'retro.quarantined':
      return 'quarantined';
    case 'retro.pulled_back':
      return `pulled back${d.outcome ? ` (${str(d.outcome)}${d.where ? `, ${str(d.where)}` : ''})` : ''}`;
    case 'retro.failed':
      return `retro failed: ${cell(str(d.error), 80)}`;
    default:
      return e.type;
  }
}

/** One event of the story, as a sentence. */
function eventText(e: ClusterEvent): string {
  const d = e.data;
  const copy = `${e.msg_id ?? '?'}${d.rcpt ? ` for ${str(d.rcpt)}` : ''}`;
  switch (e.type) {
    case 'similarity.held':
      return `${copy}${d.from !== undefined ? ` from ${cell(str(d.from) || '<>', 60)}` : ''}: deferred for ${str(d.hold_s)}s so that its retry meets a classified cluster`;
    case 'outbreak.declared':
      return `declared an outbreak${d.by ? ` by ${d.by === 'outbreak' ? 'the outbreak rule' : str(d.by)}` : ''}${d.action ? ` (${str(d.action)})` : ''}${d.reason ? `: ${cell(str(d.reason), 100)}` : ''}`;
    case 'cluster.marked':
      return `marked ${str(d.verdict)}${d.by ? ` by ${str(d.by)}` : ''}${d.policy ? ` (policy ${str(d.policy)})` : ''}${d.reason ? `: ${cell(str(d.reason))}` : ''}`;
    case 'retro.forwarded':
      return `${copy} had gone out to ${Array.isArray(d.to) ? d.to.map(str).join(', ') : '?'}`;
    case 'retro.notified':
      return `told ${Array.isArray(d.to) ? d.to.map(str).join(', ') : '?'} what was pulled back`;
    case 'outbound.outbreak_refused':
      return `refused an outbound copy${d.from !== undefined ? ` from ${cell(str(d.from) || '<>', 60)}` : ''}${Array.isArray(d.rcpts) ? ` to ${cell(d.rcpts.map(str).join(', '), 100)}` : ''}`;
    default:
      return `${copy}: ${retroText(e)}`;
  }
}

const verdictText = (c: ClusterSummary) => c.verdict ?? '-';
const pct = (n: number, of: number) => (of ? `${Math.round((100 * n) / of)}%` : '0%');

function copyText(r: MemberRecipient): string {
  return `${r.rcpt} ${r.status}${r.retro ? ` → ${retroText(r.retro)}` : ''}`;
}

function story(d: ClusterDetail, now: number): string {
  const c = d.cluster;
  const verdictPolicy = d.policies.find((p) => p.id === c.policy);
  const lines = [
    `cluster     ${c.id}`,
    `state       ${c.state}${c.declared_at !== null ? ` (declared ${fmtTime(c.declared_at)}${c.declared_by ? ` by ${c.declared_by}` : ''})` : ''}`,
    `verdict     ${c.verdict ?? 'none'}${verdictPolicy ? ` (policy ${verdictPolicy.id}: ${verdictPolicy.action}, ${verdictPolicy.source}, expires ${expiry(verdictPolicy, now)})` : ''}`,
    `subject     ${cell(c.subject, 100) || '(none)'}`,
    `seen        ${fmtTime(c.first_seen)} to ${fmtTime(c.last_seen)} (${span(c.last_seen - c.first_seen)})`,
    `members     ${c.members} from ${c.ips} address(es), ${c.sender_domains} sender domain(s), ${c.recipients} recipient(s); ${c.suspicious} suspicious (${pct(c.suspicious, c.members)})`,
  ];
  lines.push(d.policies.length ? 'policies' : 'policies    none');
  for (const p of d.policies) lines.push(`  ${p.id}  ${p.action.padEnd(10)} ${p.source.padEnd(18)} ${p.state === 'active' ? `expires ${expiry(p, now)}` : 'expired'}  ${cell(p.reason, 80)}`);
  lines.push(d.events.length ? 'what happened' : 'what happened  nothing yet (no declaration, mark or retroactive action)');
  for (const e of d.events) lines.push(`  ${fmtTime(e.ts)}  ${eventText(e)}`);
  lines.push(`copies      ${d.membersTotal > d.members.length ? `${d.members.length} oldest of ${d.membersTotal}` : `${d.members.length}`}`);
  if (d.members.length) {
    const head = ['RECEIVED', 'QUEUE ID', 'CLIENT', 'SENDER', 'SUSP', 'SUBJECT', 'RECIPIENTS (status → retroactive action)'];
    const rows = d.members.map((m) => [
      fmtTime(m.ts),
      m.id,
      m.ip ?? '',
      cell(m.sender || '<>', 40),
      m.suspicious ? 'yes' : 'no',
      cell(m.subject, 40),
      [...m.recipients.map(copyText), ...(m.forwarded.length ? [`out to ${m.forwarded.join(', ')}`] : [])].join('; ') || '(none recorded)',
    ]);
    lines.push(table([head, ...rows]).replace(/^/gm, '  '));
  }
  lines.push(`forwarded to  ${d.forwardedTo.length ? `${d.forwardedTo.length} outside address(es), which cannot be pulled back` : 'nobody outside'}`);
  for (const to of d.forwardedTo) lines.push(`  ${to}`);
  return lines.join('\n');
}

export async function runClusters(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = args(rest, OPTIONS);
    if (!['list', 'show', 'mark'].includes(sub ?? '')) throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed', true);
    const state = values.state;
    if (state !== undefined && !(CLUSTER_STATES as readonly string[]).includes(state)) throw new UsageError(`--state "${state}" is not one of ${CLUSTER_STATES.join(', ')}`);
    if (values.limit !== undefined && !/^[1-9]\d*$/.test(values.limit)) throw new UsageError(`--limit "${values.limit}" is not a positive whole number`);
    const action = values.action;
    if (action !== undefined && !(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`--action "${action}" is not one of ${ACTIONS.join(', ')}`);
    const id = sub === 'list' ? 0 : clusterId(positionals[0], sub!);
    const verdict = positionals[1];
    if (sub === 'mark') {
      if (verdict !== 'safe' && verdict !== 'bad') throw new UsageError(verdict ? `verdict "${verdict}" is not safe or bad` : 'mark needs a verdict: safe or bad', true);
      if (verdict === 'safe' && action !== undefined) throw new UsageError('--action applies only to mark … bad');
    }
    const now = Date.now();
    const since = values.since === undefined ? undefined : sinceTime(values.since, now);
    const loaded = load(values.config);
    return await withStore(loaded, async (store) => {
      switch (sub) {
        case 'list': {
          const rows = await listClusters(store.db, { state, since, limit: values.limit ? Number(values.limit) : undefined }, now);
          if (values.json) console.log(JSON.stringify(rows, null, 2));
          else if (!rows.length) console.log(state ? `no clusters in state ${state}` : 'no clusters');
          else {
            const head = ['ID', 'STATE', 'VERDICT', 'MEMBERS', 'SOURCES', 'RCPTS', 'SUSP', 'LAST SEEN', 'SUBJECT'];
            const body = rows.map((c) => [
              String(c.id),
              c.state,
              verdictText(c),
              String(c.members),
              String(c.ips),
              String(c.recipients),
              pct(c.suspicious, c.members),
              fmtTime(c.last_seen),
              cell(c.subject),
            ]);
            console.log(table([head, ...body]));
          }
          return 0;
        }
        case 'show': {
          const d = await showCluster(store.db, id, {}, now);
          if (!d) throw new ClusterError('not_found', `no cluster ${id}`);
          console.log(values.json ? JSON.stringify(d, null, 2) : story(d, now));
          return 0;
        }
        default: {
          const by = cliActor();
          const sink = new EventSink(store, silentLogger);
          const p = await markCluster(store.db, id, verdict as 'safe' | 'bad', { by, reason: values.reason, action: action as (typeof ACTIONS)[number] | undefined }, now);
          sink.emit('cluster.marked', { data: { cluster: id, verdict, action: p.action, policy: p.id, by, reason: p.reason } });
          await sink.flush();
          console.log(`cluster ${id} marked ${verdict}: policy ${p.id} (${p.action}); the running Postern applies it within a second`);
          return 0;
        }
      }
    });
  } catch (err) {
    if (err instanceof ClusterError) {
      console.error(`postern: ${err.message}`);
      return err.code === 'bad_request' ? 64 : 1;
    }
    return usageFailure(err, USAGE);
  }
}
