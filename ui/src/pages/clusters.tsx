// Similarity clusters: the list by state, newest activity first.
import { useState } from 'preact/hooks';
import { get, qs } from '../api.ts';
import { Badge, Time, useLoad } from '../components.tsx';
import { ShowList } from '../list.tsx';
import type { ClusterSummary } from '../types.ts';

export function Clusters() {
  const [state, setState] = useState('');
  const st = useLoad(() => get<{ items: ClusterSummary[] }>(`/api/v1/clusters${qs({ state, limit: 200 })}`), [state]);
  return (
    <div>
      <h1>Clusters</h1>
      <p class="tabs">
        {['', 'outbreak', 'watching', 'safe'].map((s) => (
          <button key={s} type="button" class={s === state ? 'here' : ''} onClick={() => setState(s)}>
            {s || 'all'}
          </button>
        ))}
      </p>
      <ShowList state={st} what="clusters" empty={<>No clusters{state ? ` in state ${state}` : ''}.</>}>
        {(d) => (
          <table class="clusters">
            <thead>
              <tr>
                <th>Cluster</th>
                <th>State</th>
                <th>Subject</th>
                <th class="num">Copies</th>
                <th class="num">Sources</th>
                <th class="num">Sender domains</th>
                <th class="num">Recipients</th>
                <th>First seen</th>
                <th>Last seen</th>
              </tr>
            </thead>
            <tbody>
              {d.items.map((c) => (
                <tr key={c.id}>
                  <td>
                    <a href={`/ui/clusters/${c.id}`}>#{c.id}</a>
                  </td>
                  <td>
                    <Badge text={c.verdict ?? c.state} />
                  </td>
                  <td>{c.subject ?? '—'}</td>
                  <td class="num">{c.members}</td>
                  <td class="num">{c.ips}</td>
                  <td class="num">{c.sender_domains}</td>
                  <td class="num">{c.recipients}</td>
                  <td>
                    <Time ms={c.first_seen} />
                  </td>
                  <td>
                    <Time ms={c.last_seen} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </div>
  );
}
