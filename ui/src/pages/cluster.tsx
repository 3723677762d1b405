// One cluster: its figures, its verdict with an admin's mark (safe or bad), the policies on it, every copy with what
// happened to it, and its events.
import { useState } from 'preact/hooks';
import { enc, get, post, type Me } from '../api.ts';
import { Badge, Empty, Events, Section, Show, Time, useLoad } from '../components.tsx';
import { FlashNote, why, type Flash } from '../list.tsx';
import type { ClusterDetail, PolicyRow } from '../types.ts';

/** Who set the cluster's verdict: an admin's mark names its admin in the evidence; a detector's policy, its source. */
function setBy(p: PolicyRow): string {
  return typeof p.evidence.by === 'string' ? p.evidence.by : p.source;
}

/** The verdict, who set it and why; for admins, the form that marks the cluster safe or bad. */
function Verdict({ d, admin, done }: { d: ClusterDetail; admin: boolean; done: (f: Flash) => void }) {
  const [reason, setReason] = useState('');
  const [action, setAction] = useState<'quarantine' | 'block'>('quarantine');
  const [busy, setBusy] = useState(false);
  const p = d.policies.find((x) => x.id === d.cluster.policy);

  async function mark(verdict: 'safe' | 'bad') {
    setBusy(true);
    try {
      // The API takes an action for a bad verdict only (safe is always an allow).
      const body = { verdict, ...(reason.trim() && { reason: reason.trim() }), ...(verdict === 'bad' && { action }) };
      const r = await post<{ policy: PolicyRow }>(`/api/v1/clusters/${enc(String(d.cluster.id))}/mark`, body);
      const lifted = Array.isArray(r.policy.evidence.lifted) ? (r.policy.evidence.lifted as string[]) : [];
      done({
        ok: true,
        text: (
          <>
            Marked cluster #{d.cluster.id} {verdict}: {r.policy.action} policy <a href="/ui/policies">{r.policy.id}</a>
            {lifted.length > 0 && `; lifted the detector's ${lifted.join(', ')}`}.
          </>
        ),
      });
      setReason('');
    } catch (err) {
      done({ ok: false, text: `Not marked: ${why(err)}` });
    }
    setBusy(false);
  }

  return (
    <Section title="Verdict">
      <p class="verdict" data-verdict={d.cluster.verdict ?? 'none'}>
        {d.cluster.verdict ? <Badge text={d.cluster.verdict} /> : <span class="muted">No verdict yet.</span>}
        {p && (
          <>
            {' '}
            set by <b>{setBy(p)}</b> <Time ms={p.created_at} /> ({p.action} policy {p.id}): {p.reason}
          </>
        )}
      </p>
      {admin && (
        <form
          class="search mark-cluster"
          onSubmit={(e) => {
            e.preventDefault();
          }}
        >
          <label>
            Reason
            <input name="reason" value={reason} maxLength={500} placeholder="optional" onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <label>
            If bad
            <select name="action" value={action} onChange={(e) => setAction(e.currentTarget.value as 'quarantine' | 'block')}>
              <option value="quarantine">quarantine the copies</option>
              <option value="block">block the copies</option>
            </select>
          </label>
          <button type="button" disabled={busy} onClick={() => mark('safe')}>
            Mark safe
          </button>
          <button type="button" class="danger" disabled={busy} onClick={() => mark('bad')}>
            Mark bad
          </button>
        </form>
      )}
    </Section>
  );
}

export function ClusterPage({ id, me }: { id: string; me?: Me }) {
  const st = useLoad(() => get<ClusterDetail>(`/api/v1/clusters/${encodeURIComponent(id)}`), [id]);
  // Who is signed in decides whether the mark form shows; when the router does not say, the session does.
  const session = useLoad(() => (me ? Promise.resolve(me) : get<Me>('/api/v1/session')), [me]);
  const admin = session.data?.role === 'admin';
  const [flash, setFlash] = useState<Flash>();
  return (
    <div>
      <p class="crumbs">
        <a href="/ui/clusters">Clusters</a> › #{id}
      </p>
      <Show state={st} what="clusters">
        {(d) => (
          <>
            <h1>
              Cluster #{d.cluster.id} <Badge text={d.cluster.verdict ?? d.cluster.state} />
            </h1>
            <p>
              {d.cluster.subject ?? '(no subject)'} — {d.cluster.members} copies from {d.cluster.ips} sources and {d.cluster.sender_domains} sender domains to{' '}
              {d.cluster.recipients} recipients; first seen <Time ms={d.cluster.first_seen} />, last seen <Time ms={d.cluster.last_seen} />
              {d.cluster.declared_at && (
                <>
                  ; declared an outbreak <Time ms={d.cluster.declared_at} /> by {d.cluster.declared_by}
                </>
              )}
              .
            </p>
            <FlashNote flash={flash} />
            <Verdict
              d={d}
              admin={admin}
              done={(f) => {
                setFlash(f);
                st.reload();
              }}
            />
            <Section title="Policies">
              {d.policies.length === 0 ? (
                <Empty>None.</Empty>
              ) : (
                <table>
                  <tbody>
                    {d.policies.map((p) => (
                      <tr key={p.id}>
                        <td>{p.id}</td>
                        <td>
                          <Badge text={p.action} />
                        </td>
                        <td>{p.state}</td>
                        <td>{p.reason}</td>
                        <td>{p.source}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Section>
            <Section title={`Copies (${d.members.length} of ${d.membersTotal})`}>
              <table class="members">
                <thead>
                  <tr>
                    <th>Received</th>
                    <th>Source</th>
                    <th>Sender</th>
                    <th>Subject</th>
                    <th>Recipients</th>
                  </tr>
                </thead>
                <tbody>
                  {d.members.map((m) => (
                    <tr key={m.id}>
                      <td>
                        <Time ms={m.ts} />
                      </td>
                      <td>{m.ip ?? '—'}</td>
                      <td class="addr">{m.sender ?? '—'}</td>
                      <td>
                        <a href={`/ui/messages/${encodeURIComponent(m.id)}`}>{m.subject ?? '(no subject)'}</a>
                      </td>
                      <td>
                        {m.recipients.map((r) => (
                          <div key={r.rcpt}>
                            <span class="addr">{r.rcpt}</span> <Badge text={r.action} /> {r.status}
                            {r.retro && <span class="muted"> ({r.retro.type})</span>}
                          </div>
                        ))}
                        {m.forwarded.length > 0 && <div class="muted">forwarded to {m.forwarded.join(', ')}</div>}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
            {d.forwardedTo.length > 0 && (
              <Section title="Forwarded outside">
                <p>{d.forwardedTo.join(', ')}</p>
              </Section>
            )}
            <Section title="Events">
              <Events events={d.events} />
            </Section>
          </>
        )}
      </Show>
    </div>
  );
}
