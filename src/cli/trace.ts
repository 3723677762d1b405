// postern trace: the story of one message — its connection, each recipient's decision with the symbols, each delivery attempt.
import { sql } from 'kysely';
import type { StoreDb } from '../store/db.ts';
import { args, fmtTime, load, withStore } from './common.ts';

export interface Trace {
  queue_id: string | null;
  message: Record<string, unknown> | null;
  recipients: Record<string, unknown>[];
  events: { ts: number; type: string; data: unknown }[];
  /** The live policies that changed a decision in this trace, as they stand in the table (lifted ones are gone). */
  policies?: { id: string; target_kind: string; target: string; action: string; reason: string; source: string; evidence: unknown }[];
  /** The message's quarantine entries: who released or deleted each copy, and when. */
  quarantine?: { id: string; rcpt: string; status: string; acted_at: number | null; acted_by: string | null; expires_at: number }[];
}

/** Adds the policies a trace refers to: its recipients' reasons, its verdict, its events. */
async function withPolicies(s: StoreDb, t: Trace): Promise<Trace> {
  const ids = new Set<string>();
  for (const r of t.recipients as { reasons?: { policy_id?: string }[] }[]) for (const b of r.reasons ?? []) if (b.policy_id) ids.add(b.policy_id);
  for (const p of ((t.message as { verdict?: { policies?: { id: string }[] } } | null)?.verdict?.policies ?? [])) ids.add(p.id);
  for (const e of t.events as { data: { policy?: unknown } }[]) if (typeof e.data?.policy === 'string') ids.add(e.data.policy);
  if (!ids.size) return t;
  const rows = await s.db.selectFrom('policies').selectAll().where('id', 'in', [...ids]).execute();
  return { ...t, policies: rows.map((r) => ({ id: r.id, target_kind: r.target_kind, target: r.target, action: r.action, reason: r.reason, source: r.source, evidence: JSON.parse(r.evidence) })) };
}

export async function findTrace(s: StoreDb, key: string): Promise<Trace | null> {
  const t = await findMessageTrace(s, key);
  return t && withPolicies(s, t);
}

async function findMessageTrace(s: StoreDb, key: string): Promise<Trace | null> {
  const bare = key.replace(/^<|>$/g, '');
  const msg = await s.db
    .selectFrom('messages')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', key), eb('message_id', '=', `<${bare}>`), eb('message_id', '=', bare)]))
    .orderBy('received_at', 'desc')
    .executeTakeFirst();
  if (!msg) {
    // A refused message was never given a queue id; its refusal event carries the Message-ID.
    const like = `%"message_id":"<${bare.replace(/[%_"\\]/g, '')}>"%`;
    const ev = await s.db.selectFrom('events').selectAll().where('type', '=', 'smtp.data.rejected').where('data', 'like', like).executeTakeFirst();
    // Or the key is a connection id (in the logs as cid): everything refused before DATA has only that.
    const conn = await s.db.selectFrom('events').selectAll().where('conn_id', '=', ev?.conn_id ?? key).orderBy('id').execute();
    if (!conn.length) return null;
    return { queue_id: null, message: null, recipients: [], events: conn.map((e) => ({ ts: e.ts, type: e.type, data: JSON.parse(e.data) })) };
  }
  const rcpts = await s.db.selectFrom('recipients').selectAll().where('msg_id', '=', msg.id).execute();
  const evs = await s.db
    .selectFrom('events')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('msg_id', '=', msg.id),
        eb.and([eb('conn_id', '=', msg.conn_id ?? '\u0000'), eb('msg_id', 'is', null), eb('ts', '<=', msg.received_at + 1000)]),
      ]),
    )
    .orderBy('ts')
    .orderBy('id')
    .execute();
  void sql;
  const held = await s.db
    .selectFrom('quarantine')
    .select(['id', 'rcpt', 'status', 'acted_at', 'acted_by', 'expires_at'])
    .where('msg_id', '=', msg.id)
    .execute();
  return {
    quarantine: held.map((q) => ({ ...q, acted_at: q.acted_at === null ? null : Number(q.acted_at), expires_at: Number(q.expires_at) })),
    queue_id: msg.id,
    message: { ...msg, symbols: JSON.parse(msg.symbols), verdict: JSON.parse(msg.verdict) },
    recipients: rcpts.map((r) => ({ ...r, reasons: JSON.parse(r.reasons) })),
    events: evs.map((e) => ({ ts: e.ts, type: e.type, data: JSON.parse(e.data) })),
  };
}

function describe(e: { ts: number; type: string; data: any }): string {
  const d = e.data;
  switch (e.type) {
    case 'smtp.connect':
      return `connection, source class ${d.class}, greeting pause ${d.pause_ms} ms`;
    case 'smtp.helo':
      return `HELO ${d.helo}${d.symbols?.length ? ` [${d.symbols.join(', ')}]` : ''}`;
    case 'smtp.mail':
      return `MAIL FROM:<${d.from}>`;
    case 'smtp.rcpt.accepted':
      return `RCPT TO:<${d.rcpt}> accepted`;
    case 'smtp.rcpt.rejected':
      return `RCPT TO:<${d.rcpt}> refused ${d.reply} (${d.reason})${d.policy ? ` by policy ${d.policy}: ${d.policy_reason}` : ''}${
        d.reason === 'harvest_guard' ? `: ${d.unknown} unknown recipients from ${d.scope === 'net' ? 'network' : 'address'} ${d.target}` : ''
      }`;
    case 'smtp.data.rejected':
      return `DATA refused ${d.reply} (${d.reason})${d.score !== undefined ? ` score ${d.score}` : ''}`;
    case 'message.accepted':
      return `accepted, score ${d.score}, analysis ${d.analysis_ms} ms`;
    case 'relay.attempt':
      return `delivery via ${d.route} ${d.host} (${d.ms} ms): ${d.results.map((r: any) => `${r.deliver_to} ${r.result} ${String(r.response ?? '').slice(0, 80)}`).join('; ')}`;
    case 'relay.deferred':
      return `deferred: ${d.rcpts.map((r: any) => `${r.rcpt} next ${fmtTime(r.next)}`).join(', ')}`;
    case 'relay.bounced':
      return `returned to sender: ${d.rcpts.map((r: any) => r.rcpt).join(', ')}${d.dsn ? ` (DSN ${d.dsn})` : ''}`;
    case 'relay.delivered':
      return `delivered: ${d.rcpts.join(', ')}`;
    case 'message.quarantined':
      return `held in quarantine for ${d.rcpts.join(', ')}`;
    case 'quarantine.released':
      return `released from quarantine to ${d.rcpt} by ${d.by} (queued as ${d.queue_id})`;
    case 'quarantine.deleted':
      return `deleted from quarantine for ${d.rcpt} by ${d.by}`;
    case 'quarantine.sender_listed':
      return `sender ${d.sender} ${d.kind === 'allow' ? 'allowed' : 'blocked'} for ${d.for ?? 'everyone'} by ${d.by} (policy ${d.policy})`;
    case 'quarantine.reported':
      return `reported as ${d.class === 'ham' ? 'not spam' : 'spam'} by ${d.by}${d.learned ? '' : ' (already learned)'}`;
    default:
      return `${e.type} ${JSON.stringify(d)}`;
  }
}

export function renderTrace(t: Trace): string {
  const out: string[] = [];
  const m = t.message as any;
  if (m) {
    out.push(`queue id   ${m.id}`);
    out.push(`message-id ${m.message_id ?? '-'}`);
    out.push(`received   ${fmtTime(m.received_at)} from [${m.client_ip ?? 'local'}] helo ${m.helo ?? '-'}`);
    out.push(`sender     <${m.mail_from}>   size ${m.size}   subject ${JSON.stringify(m.subject ?? '')}`);
    out.push(`score      ${m.score}`);
    out.push('symbols');
    for (const s of m.symbols) out.push(`  ${s.name.padEnd(28)} ${s.score.toFixed(2).padStart(6)}${s.detail ? `  ${s.detail.join(', ')}` : ''}`);
    out.push('recipients');
    if (m.verdict?.released_from) out.push(`released   from ${m.verdict.released_from} by ${m.verdict.by}`);
    for (const r of t.recipients as any[]) {
      out.push(`  ${r.rcpt}: ${r.action} → ${r.status}${r.deliver_to !== r.rcpt ? ` (to ${r.deliver_to})` : ''}, ${r.attempts} attempt(s)${r.last_error ? `, last error: ${r.last_error}` : ''}`);
      for (const b of r.reasons) out.push(`      because ${b.source}: ${b.detail}${b.policy_id ? ` (policy ${b.policy_id})` : ''}`);
    }
    if (t.quarantine?.length) {
      out.push('quarantine');
      for (const q of t.quarantine) {
        const acted = q.acted_at ? ` ${fmtTime(q.acted_at)} by ${q.acted_by}` : `, kept until ${fmtTime(q.expires_at)}`;
        out.push(`  ${q.rcpt}: ${q.status}${acted}  (${q.id})`);
      }
    }
  } else out.push('refused before the gateway took it (no queue id)');
  out.push('timeline');
  for (const e of t.events) out.push(`  ${fmtTime(e.ts)}  ${describe(e)}`);
  if (t.policies?.length) {
    out.push('policies');
    for (const p of t.policies) {
      out.push(`  ${p.id}  ${p.target_kind}:${p.target} ${p.action} (${p.source}): ${p.reason}`);
      out.push(`      evidence ${JSON.stringify(p.evidence)}`);
    }
  }
  return out.join('\n');
}

export async function runTrace(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { json: { type: 'boolean' } });
  const key = positionals[0];
  if (!key) {
    console.error('usage: postern trace <queue-id|message-id|connection-id> [--json]');
    return 64;
  }
  const loaded = load(values.config);
  const t = await withStore(loaded, (s) => findTrace(s, key));
  if (!t) {
    console.error(`postern: no message ${key}`);
    return 1;
  }
  console.log(values.json ? JSON.stringify(t, null, 2) : renderTrace(t));
  return 0;
}
