// One message's story: where it came from, every symbol with its score, what each recipient got and why, the
// deliveries, the quarantine, anything done afterwards, and every event in order.
import { get } from '../api.ts';
import { Badge, Empty, Events, Score, Section, Show, Time, Val, useLoad } from '../components.tsx';
import type { Story } from '../types.ts';

function Facts({ rows }: { rows: [string, unknown][] }) {
  return (
    <table class="facts">
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>
              <Val v={v} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Body({ s }: { s: Story }) {
  if (s.refused) {
    return (
      <>
        <p class="note">This message was refused; the gateway never owned it. What is known comes from its events.</p>
        <Section title="Events">
          <Events events={s.events} />
        </Section>
      </>
    );
  }
  const m = s.message ?? {};
  const symbols = [...(s.symbols ?? [])].sort((a, b) => Math.abs(b.score) - Math.abs(a.score));
  const hasCheck = symbols.some((h) => h.check);
  const hasWeight = symbols.some((h) => typeof h.weight === 'number' && h.weight !== 1);
  return (
    <>
      <Section title="Message">
        <Facts
          rows={[
            ['Queue id', s.id],
            ['Received', m.received_at ? new Date(m.received_at as number).toLocaleString() : null],
            ['From', m.mail_from],
            ['Subject', m.subject],
            ['Message-ID', m.message_id],
            ['Size', typeof m.size === 'number' ? `${m.size} bytes` : null],
            ['Status', m.status],
          ]}
        />
        <p class="story-score">
          Score <Score n={m.score as number} />
        </p>
      </Section>
      <Section title="Connection">
        <Facts
          rows={[
            ['Client IP', s.connection.ip],
            ['HELO', s.connection.helo],
            ['Connection', s.connection.conn_id],
          ]}
        />
        <Events events={s.connection.events} empty="No SMTP events kept for this connection." />
      </Section>
      <Section title={`Symbols (${symbols.length})`}>
        {symbols.length === 0 ? (
          <Empty>No symbol fired.</Empty>
        ) : (
          <table class="symbols">
            <thead>
              <tr>
                <th>Symbol</th>
                {hasCheck && <th>Check</th>}
                <th class="num">Score</th>
                {hasWeight && <th class="num">Weight</th>}
                <th>Detail</th>
              </tr>
            </thead>
            <tbody>
              {symbols.map((h, i) => (
                <tr key={`${h.name}-${i}`}>
                  <td class="sym">{h.name}</td>
                  {hasCheck && <td class="muted">{h.check ?? ''}</td>}
                  <td class="num">
                    <Score n={h.score} />
                  </td>
                  {hasWeight && <td class="num">{h.weight ?? ''}</td>}
                  <td>
                    <Val v={h.detail} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Recipients">
        <table class="recipients">
          <thead>
            <tr>
              <th>Recipient</th>
              <th>Action</th>
              <th>Status</th>
              <th>Why</th>
              <th>Policies</th>
            </tr>
          </thead>
          <tbody>
            {(s.recipients ?? []).map((r) => (
              <tr key={r.rcpt}>
                <td class="addr">{r.rcpt}</td>
                <td>
                  <Badge text={r.action} />
                </td>
                <td>
                  {r.status}
                  {r.last_error ? <div class="muted">{r.last_error}</div> : null}
                </td>
                <td>
                  <Val v={r.reasons} />
                </td>
                <td>{r.policies.join(', ') || <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Verdict">
        <Val v={s.verdict} />
      </Section>
      {(s.policies?.length ?? 0) > 0 && (
        <Section title="Policies that applied">
          <table>
            <tbody>
              {s.policies!.map((p) => (
                <tr key={p.id}>
                  <td>{p.id}</td>
                  <td>
                    <Badge text={p.action} />
                  </td>
                  <td>
                    {p.target_kind} <b>{p.target}</b>
                  </td>
                  <td>{p.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      <Section title="Deliveries">
        <Events events={s.deliveries ?? []} empty="No delivery attempt." />
      </Section>
      <Section title="Quarantine">
        {(s.quarantine?.copies.length ?? 0) === 0 ? (
          <Empty>Not quarantined.</Empty>
        ) : (
          <table class="copies">
            <tbody>
              {s.quarantine!.copies.map((c) => (
                <tr key={c.id}>
                  <td class="addr">{c.rcpt}</td>
                  <td>
                    <Badge text={c.status} />
                  </td>
                  <td>{c.reason}</td>
                  <td>
                    {c.acted_by ? (
                      <>
                        by {c.acted_by} at <Time ms={c.acted_at} />
                      </>
                    ) : (
                      <>
                        expires <Time ms={c.expires_at} />
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {(s.quarantine?.actions.length ?? 0) > 0 && <Events events={s.quarantine!.actions} />}
      </Section>
      {(s.retro?.length ?? 0) > 0 && (
        <Section title="Afterwards (outbreaks)">
          <Events events={s.retro!} />
        </Section>
      )}
      <Section title="All events">
        <Events events={s.events} />
      </Section>
    </>
  );
}

export function MessageStory({ id }: { id: string }) {
  const st = useLoad(() => get<Story>(`/api/v1/messages/${encodeURIComponent(id)}`), [id]);
  return (
    <div class="story">
      <p class="crumbs">
        <a href="/ui/messages">Messages</a> › {id}
      </p>
      <h1>{(st.data?.message?.subject as string | undefined) ?? (st.data?.refused ? 'Refused message' : 'Message')}</h1>
      <Show state={st} what="messages">
        {(s) => <Body s={s} />}
      </Show>
    </div>
  );
}
