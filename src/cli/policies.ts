// postern policies list|show|add|allow|remove|extend|pin|unpin: the live policies, shared with a running Postern
// through the store (it re-reads the table every second, so a change here takes effect within a second).
import { args, fmtTime, load, withStore } from './common.ts';
import {
  addPolicy,
  extendPolicy,
  getPolicy,
  listPolicies,
  pinPolicy,
  removePolicy,
  validatePolicyInput,
  type PolicyInput,
  type PolicyRow,
} from '../policy/admin.ts';

const USAGE = `usage: postern policies list [--all] [--source S] [--target T] [--json]
       postern policies show <id> [--json]
       postern policies add <kind> <target> <action> [--ttl D|never] [--reason TEXT] [--pin]
                            [--rate N --window D] [--delay D] [--to ADDRESS] [--for RCPT]
       postern policies allow <kind> <target> [--ttl D] [--reason TEXT] [--for RCPT]
       postern policies remove <id>
       postern policies extend <id> --ttl D|never
       postern policies pin <id>
       postern policies unpin <id> [--ttl D]
kinds: ip cidr helo sender domain recipient cluster user
actions: block defer throttle tarpit redirect quarantine allow protect (user targets: logins only from known addresses)
durations: 90s, 30m, 1h, 7d or never
--for user@domain or *@domain: only for those recipients (a user's or a domain's own allow or block)`;

const OPTIONS = {
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  pin: { type: 'boolean' },
  source: { type: 'string' },
  target: { type: 'string' },
  ttl: { type: 'string' },
  reason: { type: 'string' },
  rate: { type: 'string' },
  window: { type: 'string' },
  delay: { type: 'string' },
  to: { type: 'string' },
  for: { type: 'string' },
} as const;

/** A usage error: the command exits 64 (EX_USAGE) with its message, and the usage when the shape was wrong. */
export class UsageError extends Error {
  constructor(message: string, readonly showUsage = false) {
    super(message);
  }
}

/** A command's bad input (its own or node's argument parser's): the message, the usage when it helps, exit 64. */
export function usageFailure(err: unknown, usage: string): number {
  const e = err as Error & { code?: string };
  if (!(e instanceof UsageError) && !e.code?.startsWith('ERR_PARSE_ARGS')) throw err;
  console.error(`postern: ${e.message}${e instanceof UsageError && !e.showUsage ? '' : `\n\n${usage}`}`);
  return 64;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "90s", "30m", "1h", "7d" (a bare number is seconds) in milliseconds; "never" is null. */
export function parseDuration(text: string, what = 'duration'): number | null {
  if (text === 'never') return null;
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m || Number(m[1]) === 0) throw new UsageError(`${what} "${text}" is not a duration such as 90s, 30m, 1h, 7d or never`);
  return Number(m[1]) * UNITS[m[2] ?? 's'];
}

/** Whole seconds of a duration option; never → null. */
function ttlSeconds(text: string | undefined, whenAbsent: number | null): number | null {
  if (text === undefined) return whenAbsent;
  const ms = parseDuration(text, '--ttl');
  if (ms !== null && ms < 1000) throw new UsageError(`--ttl "${text}" is shorter than a second`);
  return ms === null ? null : Math.round(ms / 1000);
}

/** "42m", "3h", "2d": the largest unit that keeps the number readable. */
export function span(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export function expiry(p: PolicyRow, now: number): string {
  if (p.pinned) return 'pinned';
  if (p.expires_at === null) return 'never';
  return p.expires_at > now ? `in ${span(p.expires_at - now)}` : `expired ${span(now - p.expires_at)} ago`;
}

function actionText(p: PolicyRow): string {
  const q = p.params;
  if (p.action === 'throttle') return `throttle ${String(q.rate)}/${span(Number(q.window_s) * 1000)}`;
  if (p.action === 'tarpit' && q.delay_ms !== undefined) return `tarpit ${span(Number(q.delay_ms))}`;
  if (p.action === 'redirect' && q.to !== undefined) return `redirect → ${String(q.to)}`;
  if (typeof q.for === 'string') return `${p.action} for ${q.for}`;
  return p.action;
}

/** Rows as aligned columns; the last column is left ragged. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** A JSON value as indented "key: value" lines, arrays one item a line: evidence is read by people. */
export function outline(v: unknown, indent = '  '): string[] {
  if (Array.isArray(v)) {
    return v.flatMap((x) => (x !== null && typeof x === 'object' ? [`${indent}-`, ...outline(x, indent + '  ')] : [`${indent}- ${String(x)}`]));
  }
  if (v !== null && typeof v === 'object') {
    return Object.entries(v).flatMap(([k, x]) =>
      x !== null && typeof x === 'object' ? [`${indent}${k}:`, ...outline(x, indent + '  ')] : [`${indent}${k}: ${String(x)}`],
    );
  }
  return [`${indent}${String(v)}`];
}

function show(p: PolicyRow, now: number): string {
  const lines = [
    `id          ${p.id}`,
    `target      ${p.target_kind}:${p.target}`,
    `action      ${actionText(p)}`,
    `state       ${p.state}`,
    `expires     ${expiry(p, now)}${p.expires_at !== null ? ` (${fmtTime(p.expires_at)})` : ''}`,
    `created     ${fmtTime(p.created_at)}`,
    `source      ${p.source}`,
    `reason      ${p.reason}`,
  ];
  if (Object.keys(p.params).length) lines.push('params', ...outline(p.params));
  lines.push(Object.keys(p.evidence).length ? 'evidence' : 'evidence    none recorded', ...outline(p.evidence));
  return lines.join('\n');
}

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** The policy a command line describes, validated before the store is opened. */
function inputFrom(positionals: string[], values: Values, allow: boolean): PolicyInput {
  const [kind, target, action] = positionals;
  if (!kind || !target || (!allow && !action)) throw new UsageError(allow ? 'allow needs <kind> <target>' : 'add needs <kind> <target> <action>', true);
  const params: Record<string, unknown> = {};
  if (values.rate !== undefined) params.rate = Number(values.rate);
  if (values.window !== undefined) params.window_s = (parseDuration(values.window, '--window') ?? NaN) / 1000;
  if (values.delay !== undefined) params.delay_ms = parseDuration(values.delay, '--delay') ?? NaN;
  if (values.to !== undefined) params.to = values.to;
  if (values.for !== undefined) params.for = values.for;
  try {
    return validatePolicyInput({
      target_kind: kind,
      target,
      action: allow ? 'allow' : action,
      params,
      reason: values.reason ?? `${allow ? 'allowed' : 'added'} from the command line`,
      ttl_s: ttlSeconds(values.ttl, null),
      source: 'admin',
      pinned: Boolean(values.pin),
    });
  } catch (err) {
    // Name the options the admin typed rather than the stored fields.
    const flags: [RegExp, string][] = [[/\bparams\.rate\b/g, '--rate'], [/\bparams\.window_s\b/g, '--window'], [/\bparams\.delay_ms\b/g, '--delay (ms)'], [/\bparams\.to\b/g, '--to'], [/\bparams\.for\b/g, '--for'], [/\breason\b(?= must)/g, '--reason']];
    throw new UsageError(flags.reduce((m, [re, flag]) => m.replace(re, flag), (err as Error).message));
  }
}

export async function runPolicies(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = args(rest, OPTIONS);
    const id = positionals[0];
    const needId = ['show', 'remove', 'extend', 'pin', 'unpin'].includes(sub ?? '');
    if (needId && !id) throw new UsageError(`${sub} needs a policy id`, true);
    if (sub === 'extend' && values.ttl === undefined) throw new UsageError('extend needs --ttl D (or --ttl never)', true);
    const input = sub === 'add' || sub === 'allow' ? inputFrom(positionals, values, sub === 'allow') : undefined;
    const ttl = sub === 'extend' || sub === 'unpin' ? ttlSeconds(values.ttl, null) : null;
    if (!needId && !input && sub !== 'list') throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed', true);
    const loaded = load(values.config);
    return await withStore(loaded, async ({ db }) => {
      const now = Date.now();
      const missing = () => {
        console.error(`postern: no policy ${id}`);
        return 1;
      };
      switch (sub) {
        case 'list': {
          const rows = await listPolicies(db, { all: values.all, source: values.source, target: values.target }, now);
          if (values.json) console.log(JSON.stringify(rows, null, 2));
          else if (!rows.length) console.log(values.all ? 'no policies' : 'no active policies');
          else {
            const head = ['ID', 'TARGET', 'ACTION', 'EXPIRES', 'SOURCE', 'REASON'];
            console.log(table([head, ...rows.map((p) => [p.id, `${p.target_kind}:${p.target}`, actionText(p), expiry(p, now), p.source, p.reason])]));
          }
          return 0;
        }
        case 'show': {
          const p = await getPolicy(db, id, now);
          if (!p) return missing();
          console.log(values.json ? JSON.stringify(p, null, 2) : show(p, now));
          return 0;
        }
        case 'add':
        case 'allow': {
          const p = await addPolicy(db, input!, now);
          console.log(p.id);
          return 0;
        }
        case 'remove': {
          if (!(await removePolicy(db, id))) return missing();
          console.log(`${id} removed`);
          return 0;
        }
        case 'extend': {
          const before = await getPolicy(db, id, now);
          if (!before) return missing();
          if (before.pinned) {
            console.error(`postern: ${id} is pinned and never expires; unpin it to give it an expiry`);
            return 1;
          }
          const p = (await extendPolicy(db, id, ttl, now))!;
          console.log(`${id} expires ${expiry(p, now)}`);
          return 0;
        }
        case 'pin':
        case 'unpin': {
          let p = await pinPolicy(db, id, sub === 'pin');
          if (!p) return missing();
          if (ttl !== null) p = (await extendPolicy(db, id, ttl, now))!;
          console.log(`${id} ${sub === 'pin' ? 'pinned: it never expires and the analyzer leaves it alone' : `unpinned, expires ${expiry(p, now)}`}`);
          return 0;
        }
        default:
          return 64;
      }
    });
  } catch (err) {
    return usageFailure(err, USAGE);
  }
}
