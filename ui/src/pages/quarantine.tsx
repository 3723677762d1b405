// The quarantine: held copies with release and delete. Admins see everyone's, auditors read everyone's, a user
// sees the mail of its own addresses only (the API decides; this page only shows what it gets).
import { useState } from 'preact/hooks';
import { ApiError, enc, get, post, qs, type Me } from '../api.ts';
import { Badge, Empty, Score, Show, Time, useLoad } from '../components.tsx';
import type { QuarantineEntry } from '../types.ts';

const STATUSES = ['held', 'released', 'deleted', 'expired', 'any'];
const PAGE = 50;

export function Quarantine({ me }: { me: Me }) {
  const [status, setStatus] = useState('held');
  const [rcpt, setRcpt] = useState('');
  const [sender, setSender] = useState('');
  const [subject, setSubject] = useState('');
  const [filter, setFilter] = useState({ status: 'held', rcpt: '', sender: '', subject: '' });
  const [offset, setOffset] = useState(0);
  const [flash, setFlash] = useState<{ ok: boolean; text: string }>();
  const [confirming, setConfirming] = useState<string>();
  const canAct = me.role === 'admin' || me.role === 'user';

  const st = useLoad(
    () => get<{ items: QuarantineEntry[]; total: number }>(`/api/v1/quarantine${qs({ ...filter, limit: PAGE, offset })}`),
    [filter, offset],
  );

  async function act(e: QuarantineEntry, what: 'release' | 'delete') {
    setConfirming(undefined);
    try {
      await post(`/api/v1/quarantine/${enc(e.id)}/${what}`);
      setFlash({ ok: true, text: `${what === 'release' ? 'Released' : 'Deleted'}: “${e.subject ?? '(no subject)'}” for ${e.rcpt}.` });
    } catch (err) {
      setFlash({ ok: false, text: `Could not ${what} “${e.subject ?? '(no subject)'}”: ${err instanceof ApiError ? err.message : String(err)}` });
    }
    st.reload();
  }

  return (
    <div>
      <h1>Quarantine</h1>
      {me.role === 'user' && (
        <p class="note">
          The mail held for your addresses: <b>{me.addresses.join(', ') || 'none set'}</b>.
        </p>
      )}
      <form
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          setOffset(0);
          setFilter({ status, rcpt, sender, subject });
        }}
      >
        <label>
          Status
          <select name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        {me.role !== 'user' && (
          <label>
            Recipient
            <input name="rcpt" value={rcpt} onInput={(e) => setRcpt(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Sender
          <input name="sender" value={sender} onInput={(e) => setSender(e.currentTarget.value)} />
        </label>
        <label>
          Subject contains
          <input name="subject" value={subject} onInput={(e) => setSubject(e.currentTarget.value)} />
        </label>
        <button type="submit">Show</button>
      </form>
      {flash && (
        <p class={`note ${flash.ok ? 'flash' : 'error'}`} role="status">
          {flash.text}
        </p>
      )}
      <Show state={st} what="quarantine">
        {(d) =>
          d.items.length === 0 ? (
            <Empty>Nothing {filter.status === 'any' ? '' : filter.status} in quarantine.</Empty>
          ) : (
            <>
              <table class="quarantine">
                <thead>
                  <tr>
                    <th>Held</th>
                    <th>Recipient</th>
                    <th>Sender</th>
                    <th>Subject</th>
                    <th class="num">Score</th>
                    <th>Why</th>
                    <th>Status</th>
                    {canAct && <th />}
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((e) => (
                    <tr key={e.id} data-id={e.id}>
                      <td>
                        <Time ms={e.created_at} />
                      </td>
                      <td class="addr">{e.rcpt}</td>
                      <td class="addr">{e.sender || '<>'}</td>
                      <td>{me.role === 'user' ? (e.subject ?? '(no subject)') : <a href={`/ui/messages/${enc(e.msg_id)}`}>{e.subject ?? '(no subject)'}</a>}</td>
                      <td class="num">
                        <Score n={e.score} />
                      </td>
                      <td title={e.symbols.map((s) => `${s.name} ${s.score}`).join(', ')}>{e.reason}</td>
                      <td>
                        <Badge text={e.status} />
                        {e.acted_by && <div class="muted">by {e.acted_by}</div>}
                      </td>
                      {canAct && (
                        <td class="buttons">
                          {e.status === 'held' && (
                            <>
                              <button type="button" onClick={() => act(e, 'release')}>
                                Release
                              </button>{' '}
                              {confirming === e.id ? (
                                <button type="button" class="danger" onClick={() => act(e, 'delete')}>
                                  Confirm delete
                                </button>
                              ) : (
                                <button type="button" onClick={() => setConfirming(e.id)}>
                                  Delete
                                </button>
                              )}
                            </>
                          )}
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
              <p class="pager">
                {offset + 1}–{offset + d.items.length} of {d.total}{' '}
                {offset > 0 && (
                  <button type="button" onClick={() => setOffset(Math.max(0, offset - PAGE))}>
                    Newer
                  </button>
                )}{' '}
                {offset + d.items.length < d.total && (
                  <button type="button" onClick={() => setOffset(offset + PAGE)}>
                    Older
                  </button>
                )}
              </p>
            </>
          )
        }
      </Show>
    </div>
  );
}
