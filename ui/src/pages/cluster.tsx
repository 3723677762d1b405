// One cluster: its figures, the policies on it, every copy with what happened to it, and its events.
import { get } from '../api.ts';
import { Badge, Empty, Events, Section, Show, Time, useLoad } from '../components.tsx';
import type { ClusterDetail } from '../types.ts';

export function ClusterPage({ id }: { id: string }) {
  const st = useLoad(() => get<ClusterDetail>(`/api/v1/clusters/${encodeURIComponent(id)}`), [id]);
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
