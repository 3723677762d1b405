// postern trace: the story of one message — its connection, each recipient's decision with the symbols, each delivery attempt.
import { findTrace, type Trace } from '../matrix/trace.ts';
import { args, fmtTime, load, withStore } from './common.ts';

export { findTrace, type Trace };

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
