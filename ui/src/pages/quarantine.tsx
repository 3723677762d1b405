// The quarantine: held copies with release, delete, allowing or blocking their sender, and reporting them as spam
// or not. Admins see and act on everyone's, auditors only read, a user sees and acts on the mail of its own addresses
// only and lists senders for itself only (the API decides; this page only offers what the API allows the role).
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { enc, get, post, qs, type Me } from '../api.ts';
import { Badge, Empty, Score, Show, Time, useLoad } from '../components.tsx';
import { FlashNote, why, type Flash } from '../list.tsx';
import type { PolicyRow, QuarantineEntry } from '../types.ts';

const STATUSES = ['held', 'released', 'deleted', 'expired', 'any'];
const PAGE = 50;

type Scope = 'user' | 'domain' | 'global';

const domainOf = (addr: string) => addr.slice(addr.lastIndexOf('@') + 1);
/** Whom a sender listing applies to, in words: the entry's recipient, the recipient's domain, or everyone. */
const whom = (scope: Scope, rcpt: string) => (scope === 'user' ? rcpt : scope === 'domain' ? `the domain ${domainOf(rcpt)}` : 'everyone');
const subj = (e: QuarantineEntry) => `“${e.subject ?? '(no subject)'}”`;

export function Quarantine({ me }: { me: Me }) {
  const [status, setStatus] = useState('held');
  const [rcpt, setRcpt] = useState('');
  const [sender, setSender] = useState('');
  const [subject, setSubject] = useState('');
  const [filter, setFilter] = useState({ status: 'held', rcpt: '', sender: '', subject: '' });
  const [offset, setOffset] = useState(0);
  const [flash, setFlash] = useState<Flash>();
  // "ID:delete" or "ID:block": the one action waiting for its second click.
  const [confirming, setConfirming] = useState<string>();
  const [scopes, setScopes] = useState<Record<string, Scope>>({});
  // The API's roles: admins and users act, auditors read. A user lists senders for its own mailbox only.
  const canAct = me.role === 'admin' || me.role === 'user';
  const admin = me.role === 'admin';

  const st = useLoad(
    () => get<{ items: QuarantineEntry[]; total: number }>(`/api/v1/quarantine${qs({ ...filter, limit: PAGE, offset })}`),
    [filter, offset],
  );

  /** Runs one action on an entry; the flash line says what happened or why not; the list reloads either way. */
  async function run(e: QuarantineEntry, what: string, fn: () => Promise<ComponentChildren>) {
    setConfirming(undefined);
    try {
      setFlash({ ok: true, text: await fn() });
    } catch (err) {
      setFlash({ ok: false, text: `Could not ${what} ${subj(e)}: ${why(err)}` });
    }
    st.reload();
  }

  const act = (e: QuarantineEntry, what: 'release' | 'delete') =>
    run(e, what, async () => {
      await post(`/api/v1/quarantine/${enc(e.id)}/${what}`);
      return `${what === 'release' ? 'Released' : 'Deleted'}: ${subj(e)} for ${e.rcpt}.`;
    });

  const list = (e: QuarantineEntry, kind: 'allow' | 'block', scope: Scope) =>
    run(e, `${kind} the sender of`, async () => {
      const { policy } = await post<{ policy: PolicyRow }>(`/api/v1/quarantine/${enc(e.id)}/${kind}`, { scope });
      return (
        <>
          {kind === 'allow' ? 'Allowed' : 'Blocked'} {e.sender} for {whom(scope, e.rcpt)}: {kind} policy{' '}
          {/* Only staff have the Policies page; a user is told the id, for asking an admin about it. */}
          {admin ? <a href="/ui/policies">{policy.id}</a> : policy.id}
          {admin && ' on the Policies page'}.
        </>
      );
    });

  const report = (e: QuarantineEntry, cls: 'spam' | 'ham') =>
    run(e, 'report', async () => {
      const { learned } = await post<{ learned: boolean }>(`/api/v1/quarantine/${enc(e.id)}/report`, { class: cls });
      const as = cls === 'spam' ? 'spam' : 'not spam';
      return `Reported ${subj(e)} as ${as}: ${learned ? 'the classifier learned it' : `the classifier had already learned it as ${as}`}.`;
    });

  /** The row's buttons (a plain function, not a component: a component made in each render would remount). */
  function actions(e: QuarantineEntry) {
    const scope = scopes[e.id] ?? 'user';
    const held = e.status === 'held';
    // The null sender (bounces) cannot be listed; the API says so, the page does not offer it.
    const listable = e.sender.includes('@');
    return (
      <>
        {held && (
          <div>
            <button type="button" onClick={() => act(e, 'release')}>
              Release
            </button>{' '}
            {confirming === `${e.id}:delete` ? (
              <button type="button" class="danger" onClick={() => act(e, 'delete')}>
                Confirm delete
              </button>
            ) : (
              <button type="button" onClick={() => setConfirming(`${e.id}:delete`)}>
                Delete
              </button>
            )}
          </div>
        )}
        {listable && (
          <div class="list-sender">
            {admin && (
              <select
                aria-label="Scope"
                name="scope"
                value={scope}
                onChange={(ev) => {
                  setConfirming(undefined);
                  setScopes({ ...scopes, [e.id]: ev.currentTarget.value as Scope });
                }}
              >
                <option value="user">for {e.rcpt}</option>
                <option value="domain">for *@{domainOf(e.rcpt)}</option>
                <option value="global">for everyone</option>
              </select>
            )}{' '}
            <button type="button" onClick={() => list(e, 'allow', scope)}>
              Allow sender
            </button>{' '}
            {/* Blocking a sender for everyone refuses its mail to every recipient: it asks once more. */}
            {scope === 'global' && confirming !== `${e.id}:block` ? (
              <button type="button" onClick={() => setConfirming(`${e.id}:block`)}>
                Block sender
              </button>
            ) : (
              <button type="button" class={scope === 'global' ? 'danger' : ''} onClick={() => list(e, 'block', scope)}>
                {scope === 'global' ? 'Confirm block for everyone' : 'Block sender'}
              </button>
            )}
          </div>
        )}
        {held && (
          <div>
            <button type="button" onClick={() => report(e, 'spam')}>
              Report spam
            </button>{' '}
            <button type="button" onClick={() => report(e, 'ham')}>
              Not spam
            </button>
          </div>
        )}
      </>
    );
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
      <FlashNote flash={flash} />
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
                          {actions(e)}
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
