// Messages: a search form (kept in the address, so a search can be linked), the matching messages newest first,
// and more pages by cursor.
import { get, qs } from '../api.ts';
import { MessageCells, Time } from '../components.tsx';
import { CursorItems, useCursorList, useQueryForm } from '../list.tsx';
import type { MessageItem, Page } from '../types.ts';

const FIELDS = ['sender', 'recipient', 'subject', 'ip', 'action', 'status', 'period'] as const;
type Field = (typeof FIELDS)[number];
const PERIODS: Record<string, number> = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };
const ACTIONS = ['accept', 'tag', 'quarantine', 'redirect', 'defer', 'reject'];
const STATUSES = ['queued', 'delivered', 'deferred', 'bounced', 'expired', 'quarantined'];

function apiQuery(f: Record<Field, string>, cursor?: string | null) {
  const since = PERIODS[f.period] ? Date.now() - PERIODS[f.period] : undefined;
  return qs({ sender: f.sender, recipient: f.recipient, subject: f.subject, ip: f.ip, action: f.action, status: f.status, since, limit: 50, cursor });
}

export function Messages() {
  const q = useQueryForm(FIELDS, '/messages');
  const list = useCursorList((cursor) => get<Page<MessageItem>>(`/api/v1/messages${apiQuery(q.query(), cursor)}`), [q.search]);
  const { text, pick } = q;

  return (
    <div>
      <h1>Messages</h1>
      <form class="search" onSubmit={q.submit}>
        {text('sender', 'Sender', 'ann@example.com or @example.com')}
        {text('recipient', 'Recipient', 'bob@example.org')}
        {text('subject', 'Subject contains', 'invoice')}
        {text('ip', 'Client IP', '192.0.2.1')}
        {pick('action', 'Action', ACTIONS)}
        {pick('status', 'Status', STATUSES)}
        {pick('period', 'Received', Object.keys(PERIODS), 'any time')}
        <button type="submit">Search</button>
      </form>
      <CursorItems list={list} what="messages" empty="No message matches.">
        {({ items }) => (
          <table class="messages">
            <thead>
              <tr>
                <th>Received</th>
                <th>From</th>
                <th>Recipients</th>
                <th>Subject</th>
                <th>Action</th>
                <th class="num">Score</th>
                <th>Client</th>
              </tr>
            </thead>
            <tbody>
              {items.map((m) => (
                <tr key={m.id}>
                  <td>
                    <Time ms={m.received_at} />
                  </td>
                  <td class="addr">{m.mail_from || '<>'}</td>
                  <td class="addr">
                    {m.recipients.map((r) => (
                      <div key={r.rcpt}>
                        {r.rcpt} <span class="muted">{r.status}</span>
                      </div>
                    ))}
                  </td>
                  <MessageCells m={m} />
                  <td>{m.client_ip ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </CursorItems>
    </div>
  );
}
