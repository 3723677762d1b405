// The delivery queue: the recipients the relay still has to deliver, oldest first, with why the last attempt failed.
// Admins make one message or the whole queue due now (the relay takes them at its next poll); auditors read. The
// filters live in the address, so a view of the queue can be linked.
import { useState } from 'preact/hooks';
import { enc, get, post, qs, type Me } from '../api.ts';
import { Badge, Time } from '../components.tsx';
import { CursorItems, FlashNote, useCursorList, useQueryForm, why, type Flash } from '../list.tsx';
import type { QueueItem, QueuePage } from '../types.ts';

const FIELDS = ['rcpt', 'domain', 'sender', 'has_error'] as const;
const PAGE = 50;
/** Errors longer than this are cut in the table; the whole text is on hover and when opened. */
const SHORT = 70;

/** A duration as people say it: "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

function LastError({ text }: { text: string | null }) {
  if (!text) return <span class="muted">—</span>;
  if (text.length <= SHORT) return <span title={text}>{text}</span>;
  return (
    <details class="last-error" title={text}>
      <summary>{text.slice(0, SHORT)}…</summary>
      {text}
    </details>
  );
}

export function Queue({ me }: { me: Me }) {
  const [tick, setTick] = useState(0);
  // Refresh also puts the form back to the search shown.
  const q = useQueryForm(FIELDS, '/queue', [tick]);
  const list = useCursorList((cursor) => get<QueuePage>(`/api/v1/queue${qs({ ...q.query(), limit: PAGE, cursor })}`), [q.search, tick]);
  const [flash, setFlash] = useState<Flash>();
  const [confirming, setConfirming] = useState(false);
  const admin = me.role === 'admin';
  const { form, set, text, search } = q;
  const data = list.data;

  const failed = (what: string, err: unknown) => setFlash({ ok: false, text: `Could not ${what}: ${why(err)}` });

  async function retry(i: QueueItem) {
    try {
      const r = await post<{ recipients: number }>(`/api/v1/queue/${enc(i.queue_id)}/retry`);
      setFlash({ ok: true, text: `${i.queue_id}: ${r.recipients} recipient(s) due now; the relay tries them within seconds.` });
    } catch (err) {
      failed(`retry ${i.queue_id}`, err);
    }
    setTick((t) => t + 1);
  }

  async function flush() {
    setConfirming(false);
    try {
      const r = await post<{ recipients: number }>('/api/v1/queue/flush');
      setFlash({ ok: true, text: `${r.recipients} recipient(s) due now; the relay tries them within seconds.` });
    } catch (err) {
      failed('retry the queue', err);
    }
    setTick((t) => t + 1);
  }

  const sum = data?.summary;

  return (
    <div>
      <h1>Queue</h1>
      <p class="crumbs">
        Mail accepted and waiting for delivery: not tried yet, or failed for now and waiting for its next attempt. Its
        health over time is on the <a href="/ui/">overview</a>.
      </p>
      {sum && (
        <div class="totals queue-summary">
          <span>
            <b>{sum.recipients}</b> recipient(s) waiting in <b>{sum.messages}</b> message(s)
          </span>
          <span>
            oldest: {sum.oldest_received_at === null ? <span class="muted">—</span> : <><Time ms={sum.oldest_received_at} /> ({fmtAge(Date.now() - sum.oldest_received_at)} ago)</>}
          </span>
          <span>
            with errors: <b>{sum.with_errors}</b>
          </span>
          <span>
            <button type="button" onClick={() => setTick((t) => t + 1)}>
              Refresh
            </button>{' '}
            {admin &&
              sum.recipients > 0 &&
              (confirming ? (
                <>
                  <button type="button" class="danger" onClick={flush}>
                    Confirm: retry all {sum.recipients} now
                  </button>{' '}
                  <button type="button" onClick={() => setConfirming(false)}>
                    Cancel
                  </button>
                </>
              ) : (
                <button type="button" onClick={() => setConfirming(true)}>
                  Retry all now
                </button>
              ))}
          </span>
        </div>
      )}
      <FlashNote flash={flash} />
      <form class="search" onSubmit={q.submit}>
        {text('rcpt', 'Recipient', 'bob@example.org')}
        {text('domain', 'Recipient domain', 'example.org')}
        {text('sender', 'Sender', 'ann@example.com, @example.com')}
        <label>
          Last attempt
          <select name="has_error" value={form.has_error} onChange={set('has_error')}>
            <option value="">any</option>
            <option value="true">failed</option>
            <option value="false">no error</option>
          </select>
        </label>
        <button type="submit">Search</button>
      </form>
      <CursorItems list={list} what="queue" empty={search ? 'Nothing waiting matches.' : 'The queue is empty: everything accepted was delivered.'}>
        {({ items }) => (
          <table class="queue">
            <thead>
              <tr>
                <th>Received</th>
                <th>Message</th>
                <th>From</th>
                <th>To</th>
                <th>Route</th>
                <th class="num">Attempts</th>
                <th>Next attempt</th>
                <th>Last error</th>
                {admin && <th />}
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={`${i.queue_id} ${i.rcpt}`} data-id={i.queue_id}>
                  <td>
                    <Time ms={i.received_at} />
                    <div class="muted">{fmtAge(i.age_ms)} ago</div>
                  </td>
                  <td>
                    <a href={`/ui/messages/${enc(i.queue_id)}`} title={i.message_id ?? undefined}>
                      {i.subject ?? '(no subject)'}
                    </a>
                    <div class="muted sym">{i.queue_id}</div>
                  </td>
                  <td class="addr">{i.mail_from || '<>'}</td>
                  <td class="addr">
                    {i.rcpt}
                    {i.deliver_to !== i.rcpt && <div class="muted">→ {i.deliver_to}</div>}
                  </td>
                  <td>{i.route}</td>
                  <td class="num">{i.attempts}</td>
                  <td>
                    <Time ms={i.next_attempt_at} />
                    <div>
                      <Badge text={i.status} />
                    </div>
                  </td>
                  <td>
                    <LastError text={i.last_error} />
                  </td>
                  {admin && (
                    <td class="buttons">
                      <button type="button" onClick={() => retry(i)}>
                        Retry
                      </button>
                    </td>
                )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </CursorItems>
    </div>
  );
}
