// postern audit USER: the audit trail of an audited mailbox user (monitor.audit.users) from the store, each session
// told as a story, or as JSON or CSV (one row per event, with the story's line beside the data). postern audit users
// list|add|remove: who is audited besides the config's list (table audit_users, as the center's audit users API).
import type { StoreDb } from '../store/db.ts';
import { renderStory, storyLine, type AuditEvent } from '../monitor/audit/story.ts';
import { args, fmtTime, load, withStore } from './common.ts';
import { parseDuration, table, UsageError, usageFailure } from './policies.ts';
import { addAuditUser, auditPattern, AuditPatternError, listAuditUsers, removeAuditUser } from '../monitor/audit/users.ts';
import { EventSink } from '../matrix/sink.ts';
import { silentLogger } from '../core/log.ts';
import { cliActor } from './quarantine.ts';

const USAGE = `usage: postern audit <user> [--since 24h|ISO-TIME] [--session ID] [--json|--csv]
       postern audit users list [--json] | add PATTERN | remove PATTERN
--since: how far back (90s, 30m, 24h, 7d) or from when (2026-11-30T09:00:00Z); default 24h
PATTERN: an address, *@domain or *; the running Postern follows a change within 5 s`;

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

/** postern audit users list|add|remove: the audited users besides the config's; a change is recorded as an event. */
async function runUsers(positionals: string[], values: { config?: string; json?: boolean }): Promise<number> {
  const [op, text, ...rest] = positionals;
  if (rest.length) throw new UsageError(`audit users ${op} takes one pattern, not "${[text, ...rest].join(' ')}"`, true);
  const loaded = load(values.config);
  const configured = loaded.config.monitor.audit.users;
  if (op === 'list' || op === undefined) {
    if (text !== undefined) throw new UsageError('audit users list takes no pattern', true);
    const users = await withStore(loaded, (s) => listAuditUsers(s.db, configured));
    if (values.json) console.log(JSON.stringify({ items: users }, null, 2));
    else if (!users.length) console.log('no audited users (monitor.audit.users is empty and none was added)');
    else console.log(table([['PATTERN', 'SOURCE', 'ADDED BY', 'ADDED'], ...users.map((u) => [u.pattern, u.source, u.added_by ?? '-', u.added_at ? fmtTime(u.added_at) : '-'])]));
    return 0;
  }
  if (op !== 'add' && op !== 'remove') throw new UsageError(`audit users: "${op}" is not list, add or remove`, true);
  if (text === undefined) throw new UsageError(`audit users ${op} needs a pattern: an address, *@domain or *`, true);
  let pattern: string;
  try {
    pattern = auditPattern(text);
  } catch (err) {
    if (err instanceof AuditPatternError) throw new UsageError(err.message);
    throw err;
  }
  const inConfig = configured.some((p) => p.toLowerCase() === pattern);
  return withStore(loaded, async (s) => {
    const by = cliActor();
    const sink = new EventSink(s, silentLogger);
    if (op === 'add') {
      if (inConfig) {
        console.log(`${pattern} is already audited by the configuration (monitor.audit.users)`);
        return 0;
      }
      const { created } = await addAuditUser(s.db, pattern, by);
      if (created) sink.emit('audit.user_added', { data: { pattern, by } });
      await sink.flush();
      console.log(created ? `${pattern} is audited from its next login (the running Postern follows within 5 s)` : `${pattern} was already audited`);
      return 0;
    }
    if (inConfig) {
      console.error(`postern: ${pattern} is audited by the configuration: remove it from monitor.audit.users in the config file`);
      return 1;
    }
    if (!(await removeAuditUser(s.db, pattern))) {
      console.error(`postern: ${pattern} is not an audited user`);
      return 1;
    }
    sink.emit('audit.user_removed', { data: { pattern, by } });
    await sink.flush();
    console.log(`${pattern} is no longer audited from its next login (the running Postern follows within 5 s)`);
    return 0;
  });
}

export async function runAudit(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = args(argv, OPTIONS);
    if (positionals[0] === 'users') return await runUsers(positionals.slice(1), values);
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
