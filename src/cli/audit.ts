// postern audit USER: the audit trail of an audited mailbox user (monitor.audit.users) from the store, each session
// told as a story, or as JSON or CSV (one row per event, with the story's line beside the data).
import type { StoreDb } from '../store/db.ts';
import { renderStory, storyLine, type AuditEvent } from '../monitor/audit/story.ts';
import { args, load, withStore } from './common.ts';
import { parseDuration, UsageError, usageFailure } from './policies.ts';

const USAGE = `usage: postern audit <user> [--since 24h|ISO-TIME] [--session ID] [--json|--csv]
--since: how far back (90s, 30m, 24h, 7d) or from when (2026-11-30T09:00:00Z); default 24h`;

const OPTIONS = {
  since: { type: 'string' },
  session: { type: 'string' },
  json: { type: 'boolean' },
  csv: { type: 'boolean' },
} as const;

/** The most events one run prints: a trail longer than this is read in pieces with --since and --session. */
export const MAX_EVENTS = 100_000;

/** The start of the trail from --since: a duration back from now, or an ISO 8601 time. */
export function sinceTime(text: string | undefined, now: number): number {
  if (text === undefined) return now - 86_400_000;
  if (/^\d+(ms|s|m|h|d)?$/.test(text.trim())) return now - (parseDuration(text, '--since') ?? 0);
  const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(t)) throw new UsageError(`--since "${text}" is neither a duration such as 30m, 24h or 7d nor an ISO time such as 2026-11-30T09:00:00Z`);
  return t;
}

/** The audit events of a user (lower case), oldest first; the user is matched exactly after the store's rough filter. */
export async function auditTrail(s: Pick<StoreDb, 'db'>, user: string, o: { since: number; session?: string }): Promise<{ events: AuditEvent[]; truncated: boolean }> {
  // A LIKE on the stored JSON narrows the rows; %, _ and \ (LIKE's own, and JSON's escape) become the one-character wildcard.
  const like = `%"user":${JSON.stringify(user).replace(/[%_\\]/g, '_')}%`;
  let q = s.db.selectFrom('events').selectAll().where('type', 'in', ['audit.session', 'audit.command']).where('ts', '>=', o.since).where('data', 'like', like);
  if (o.session) q = q.where('conn_id', '=', o.session);
  const rows = await q.orderBy('ts').orderBy('id').limit(MAX_EVENTS + 1).execute();
  const events: AuditEvent[] = [];
  for (const r of rows.slice(0, MAX_EVENTS)) {
    const data = JSON.parse(r.data) as Record<string, unknown>;
    if (data.user !== user) continue;
    events.push({ ts: Number(r.ts), type: r.type, ip: r.ip, session: String(data.session ?? r.conn_id ?? ''), data });
  }
  return { events, truncated: rows.length > MAX_EVENTS };
}

const CSV_COLUMNS = ['time', 'session', 'protocol', 'user', 'ip', 'event', 'command', 'mailbox', 'set', 'items', 'flags', 'target', 'size', 'msg', 'text'] as const;

/**
 * One CSV field (RFC 4180). A field a spreadsheet would run as a formula (=, +, -, @ first, OWASP's CSV injection
 * advice) gets a leading ' : mailbox names and FETCH items come from the mailbox user.
 */
function csvField(v: unknown): string {
  let t = v === undefined || v === null ? '' : Array.isArray(v) ? v.join(' ') : String(v);
  if (/^[=+\-@\t\r]/.test(t)) t = `'${t}`;
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

function csvRow(e: AuditEvent): string {
  const d = e.data;
  const row: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    time: new Date(e.ts).toISOString(),
    session: e.session,
    protocol: d.protocol,
    user: d.user,
    ip: e.ip,
    event: e.type === 'audit.session' ? d.phase : 'command',
    command: d.command,
    mailbox: d.mailbox,
    set: d.set,
    items: d.items,
    flags: d.flags,
    target: d.target,
    size: d.size,
    msg: d.msg,
    text: storyLine(e),
  };
  return CSV_COLUMNS.map((c) => csvField(row[c])).join(',');
}

/** The trail as CSV: the header row, then one row per event. */
export function auditCsv(events: readonly AuditEvent[]): string {
  return [CSV_COLUMNS.join(','), ...events.map(csvRow)].join('\n');
}

/** The trail as --json prints it and the audit API answers: each event with the story's line beside its data. */
export function auditJson(user: string, since: number, events: readonly AuditEvent[]) {
  const out = events.map((e) => ({ ts: e.ts, time: new Date(e.ts).toISOString(), type: e.type, session: e.session, ip: e.ip, text: storyLine(e), data: e.data }));
  return { user, since: new Date(since).toISOString(), events: out };
}

export async function runAudit(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = args(argv, OPTIONS);
    const user = positionals[0]?.trim().toLowerCase();
    if (!user) throw new UsageError('audit needs the user whose trail to show', true);
    if (positionals.length > 1) throw new UsageError(`audit takes one user, not "${positionals.join(' ')}"`, true);
    if (values.json && values.csv) throw new UsageError('--json and --csv cannot be given together');
    const since = sinceTime(values.since, Date.now());
    const { events, truncated } = await withStore(load(values.config), (s) => auditTrail(s, user, { since, session: values.session }));
    if (truncated) console.error(`postern: only the first ${MAX_EVENTS} events are shown; narrow with --since or --session`);
    if (values.json) {
      console.log(JSON.stringify(auditJson(user, since, events), null, 2));
    } else if (values.csv) {
      console.log(auditCsv(events));
    } else if (!events.length) {
      console.log(`no audit trail for ${user} since ${new Date(since).toISOString()} (is the user in monitor.audit.users?)`);
    } else console.log(renderStory(events));
    return 0;
  } catch (err) {
    return usageFailure(err, USAGE);
  }
}
