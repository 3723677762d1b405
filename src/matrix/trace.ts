// The story of one message from the data matrix: its connection, each recipient's decision with the symbols, each
// delivery attempt, its quarantine copies and the policies that decided. Read by postern trace and the messages API.
import type { StoreDb } from '../store/db.ts';

/** What a trace reads: the store's query builder. */
export type TraceStore = Pick<StoreDb, 'db'>;

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
async function withPolicies(s: TraceStore, t: Trace): Promise<Trace> {
  const ids = new Set<string>();
  for (const r of t.recipients as { reasons?: { policy_id?: string }[] }[]) for (const b of r.reasons ?? []) if (b.policy_id) ids.add(b.policy_id);
  for (const p of ((t.message as { verdict?: { policies?: { id: string }[] } } | null)?.verdict?.policies ?? [])) ids.add(p.id);
  for (const e of t.events as { data: { policy?: unknown } }[]) if (typeof e.data?.policy === 'string') ids.add(e.data.policy);
  if (!ids.size) return t;
  const rows = await s.db.selectFrom('policies').selectAll().where('id', 'in', [...ids]).execute();
  return { ...t, policies: rows.map((r) => ({ id: r.id, target_kind: r.target_kind, target: r.target, action: r.action, reason: r.reason, source: r.source, evidence: JSON.parse(r.evidence) })) };
}

export async function findTrace(s: TraceStore, key: string): Promise<Trace | null> {
  const t = await findMessageTrace(s, key);
  return t && withPolicies(s, t);
}

async function findMessageTrace(s: TraceStore, key: string): Promise<Trace | null> {
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
