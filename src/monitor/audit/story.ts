// The audit trail told as a story: one line per audit.* event, in the words of the protocol ("SELECT INBOX",
// "FETCH 1:5 (FLAGS BODY.PEEK[HEADER])", "STORE 3 +FLAGS (\Deleted)", "logout after 42 s"). Used by
// `postern audit`; the JSON and CSV forms carry the same line beside the data.

export interface AuditEvent {
  ts: number;
  type: string;
  ip: string | null;
  session: string;
  data: Record<string, any>;
}

const octets = (n: number): string => (n < 10_000 ? `${n} octets` : n < 10_000_000 ? `${Math.round(n / 1024)} KiB` : `${Math.round(n / 1048576)} MiB`);

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function session(d: Record<string, any>, ip: string | null): string {
  // A webmail's login: the browser's address and user agent (its TLS is the web server's, unknown here).
  if (d.phase === 'login' && d.protocol === 'webmail') return `webmail login from ${d.ip ?? ip ?? '?'}${d.user_agent ? ` (${d.user_agent})` : ''}`;
  if (d.phase === 'login') {
    const tls = d.tls ? ` (TLS${d.tls.version ? ` ${d.tls.version}` : ''})` : ' (no TLS)';
    const client = d.client?.name ? `, client ${d.client.name}${d.client.version ? ` ${d.client.version}` : ''}` : '';
    return `${d.protocol} login from ${d.ip ?? ip ?? '?'}${tls}${client}`;
  }
  const how = d.reason === 'logout' ? 'logout' : `closed (${d.reason})`;
  return `${how} after ${duration(Number(d.duration_ms))}: ${d.commands} commands, ${octets(Number(d.bytes_in))} in, ${octets(Number(d.bytes_out))} out`;
}

/** The server's reply to a submission command, as the story tells it after the command. */
const answer = (d: Record<string, any>): string => (d.reply ? `: ${d.reply}` : '');

function command(d: Record<string, any>): string {
  const c = String(d.command);
  const verb = c.replace(/^UID /, '');
  const where = d.mailbox ? ` in ${d.mailbox}` : '';
  switch (verb) {
    case 'SELECT':
    case 'EXAMINE':
    case 'CREATE':
    case 'DELETE':
      return `${c} ${d.mailbox}`;
    case 'CLOSE':
    case 'UNSELECT':
      return `${c}${d.mailbox ? ` ${d.mailbox}` : ''}`;
    case 'FETCH':
      return `${c} ${d.set} ${d.items}${where}`;
    case 'STORE':
      return `${c} ${d.set} ${d.items} (${(d.flags ?? []).join(' ')})${where}`;
    case 'COPY':
    case 'MOVE':
      return `${c} ${d.set}${where} to ${d.target}`;
    case 'RENAME':
      return `${c} ${d.mailbox} to ${d.target}`;
    case 'EXPUNGE':
      return `${c}${d.set ? ` ${d.set}` : ''}${where}`;
    case 'APPEND':
      return `${c} to ${d.mailbox}, ${octets(Number(d.size))}${d.messages ? ` in ${d.messages} messages` : ''}${d.flags ? ` (${d.flags.join(' ')})` : ''}`;
    case 'RETR':
    case 'DELE':
      return `${c} ${d.msg}`;
    case 'TOP':
      return `${c} ${d.msg} ${d.lines}`;
    case 'MAIL FROM':
      return `${c} <${d.from}>${answer(d)}`;
    case 'RCPT TO':
      return `${c} <${d.to}>${answer(d)}`;
    case 'DATA':
      return `${c}${d.size !== undefined ? ` ${octets(Number(d.size))}` : ''}${d.message_id ? `, Message-ID ${d.message_id}` : ''}${answer(d)}`;
    case 'RSET':
    case 'QUIT':
      return `${c}${answer(d)}`;
    case 'SEND':
      return `${c} to ${(d.to ?? []).join(', ')}${d.recipients ? ` (${d.recipients} recipients)` : ''}${d.size !== undefined ? `, ${octets(Number(d.size))}` : ''}${d.message_id ? `, Message-ID ${d.message_id}` : ''}`;
    case 'READ':
      return `${c}${d.uid !== undefined ? ` UID ${d.uid}` : ''}${where}${d.message_id ? `, Message-ID ${d.message_id}` : ''}`;
    default:
      return c;
  }
}

/** One event as a line of the story, without its time. */
export function storyLine(e: AuditEvent): string {
  return e.type === 'audit.session' ? session(e.data, e.ip) : command(e.data);
}

/** HH:MM:SS in UTC, as the story's lines start; the session's heading carries the date. */
export const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 19);

/** The story of each session, oldest session first, under a heading that names it. */
export function renderStory(events: readonly AuditEvent[]): string {
  const bySession = new Map<string, AuditEvent[]>();
  for (const e of events) {
    const list = bySession.get(e.session);
    if (list) list.push(e);
    else bySession.set(e.session, [e]);
  }
  const out: string[] = [];
  for (const [id, list] of bySession) {
    const first = list[0];
    if (out.length) out.push('');
    out.push(`session ${id}  ${first.data.protocol}  ${first.data.user}  ${new Date(first.ts).toISOString().slice(0, 10)}`);
    for (const e of list) out.push(`  ${clock(e.ts)}  ${storyLine(e)}`);
  }
  return out.join('\n');
}
