// The overview: the last hour's mail by action, the alerts, the latest messages, the top sending addresses and sender
// domains, active policies, current outbreaks, recent failed sign-ins and the queue's health.
import { get, getText, qs } from '../api.ts';
import { Chart, type Series } from '../chart.tsx';
import { ACTION_ORDER, Badge, Empty, MessageCells, Score, Section, Show, Time, Val, useLoad, worst } from '../components.tsx';
import { ShowList } from '../list.tsx';
import { useLiveTick } from '../live.ts';
import type { Alert, EventRow, MessageItem, Page, PolicyRow, ClusterSummary, SourceItem } from '../types.ts';

const HOUR = 3_600_000;
const COLORS: Record<string, string> = { accept: '#2e7d32', tag: '#b8860b', quarantine: '#e65100', redirect: '#1565c0', defer: '#6a1b9a', reject: '#c62828' };

/** Every event of these types in the last hour, following the cursor for up to `pages` pages. */
async function lastHour(types: string, pages = 10): Promise<EventRow[]> {
  const since = Date.now() - HOUR;
  const out: EventRow[] = [];
  let cursor: string | null | undefined;
  for (let i = 0; i < pages; i++) {
    const p = await get<Page<EventRow>>(`/api/v1/events${qs({ type: types, since, limit: 500, cursor })}`);
    out.push(...p.items);
    cursor = p.next_cursor;
    if (!cursor) break;
  }
  return out;
}

/** Per-minute counts by action: a message counts once, under its recipients' worst action; a refusal is a reject. */
function perMinute(events: EventRow[], now = Date.now()) {
  const end = Math.floor(now / 60_000) * 60_000;
  const start = end - 59 * 60_000;
  const xs = Array.from({ length: 60 }, (_, i) => (start + i * 60_000) / 1000);
  const counts: Record<string, number[]> = Object.fromEntries(ACTION_ORDER.map((a) => [a, new Array(60).fill(0)]));
  const totals: Record<string, number> = Object.fromEntries(ACTION_ORDER.map((a) => [a, 0]));
  for (const e of events) {
    const i = Math.floor((e.ts - start) / 60_000);
    if (i < 0 || i >= 60) continue;
    const action = e.type === 'smtp.data.rejected' ? 'reject' : worst(((e.data.recipients as { action: string }[] | undefined) ?? []).map((r) => r.action));
    if (!counts[action]) continue;
    counts[action][i]++;
    totals[action]++;
  }
  const series: Series[] = ACTION_ORDER.filter((a) => totals[a] > 0 || a === 'accept').map((a) => ({ label: a, color: COLORS[a], values: counts[a] }));
  return { xs, series, totals };
}

function Traffic({ tick }: { tick: number }) {
  const st = useLoad(async () => perMinute(await lastHour('message.accepted,smtp.data.rejected')), [tick]);
  return (
    <Section title="Mail in the last hour, per minute">
      <Show state={st} what="events">
        {(d) => (
          <>
            <p class="totals">
              {ACTION_ORDER.map((a) => (
                <span key={a} class="total">
                  <Badge text={a} /> <b data-total={a}>{d.totals[a]}</b>
                </span>
              ))}
            </p>
            <Chart xs={d.xs} series={d.series} title="Messages per minute by action" />
          </>
        )}
      </Show>
    </Section>
  );
}

const SEVERITY_BADGE: Record<Alert['severity'], string> = { critical: 'block', high: 'quarantine', medium: 'throttle', low: 'allow' };

function Alerts({ tick }: { tick: number }) {
  const st = useLoad(() => get<Page<Alert>>('/api/v1/alerts?limit=10'), [tick]);
  return (
    <Section title="Alerts">
      <ShowList state={st} what="alerts" empty="No alert.">
        {(p) => (
          <table class="alerts">
            <tbody>
              {p.items.map((a) => (
                <tr key={a.id} data-type={a.type}>
                  <td>
                    <Time ms={a.ts} />
                  </td>
                  <td>
                    <span class={`badge b-${SEVERITY_BADGE[a.severity]}`}>{a.severity}</span>
                  </td>
                  <td>{a.summary}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

function Latest({ tick }: { tick: number }) {
  const st = useLoad(() => get<Page<MessageItem>>('/api/v1/messages?limit=10'), [tick]);
  return (
    <Section title="Latest messages" actions={<a href="/ui/messages">search all</a>}>
      <ShowList state={st} what="messages" empty="No messages yet.">
        {(p) => (
          <table class="latest-messages">
            <thead>
              <tr>
                <th>Received</th>
                <th>From</th>
                <th>Subject</th>
                <th>Action</th>
                <th class="num">Score</th>
              </tr>
            </thead>
            <tbody>
              {p.items.map((m) => (
                <tr key={m.id}>
                  <td>
                    <Time ms={m.received_at} />
                  </td>
                  <td class="addr">{m.mail_from || '<>'}</td>
                  <MessageCells m={m} />
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

const DAY = 24 * HOUR;
const pct = (share: number) => (share > 0 ? ` (${Math.round(share * 100)}%)` : '');

/**
 * The ten sources of a kind most active by messages among those seen in the last 24 hours. The analyzer keeps
 * totals per source, not per day, so the counts are since each was first seen; the caption says so.
 */
function TopSources({ tick, kind, title, head, link }: { tick: number; kind: 'address' | 'domain'; title: string; head: string; link: (key: string) => string }) {
  const st = useLoad(() => get<Page<SourceItem>>(`/api/v1/sources${qs({ kind, sort: 'messages', since: Date.now() - DAY, limit: 10 })}`), [tick]);
  return (
    <Section title={title}>
      <p class="muted caption">Seen in the last 24 hours, the 10 with the most messages; counts are totals since first seen.</p>
      <ShowList state={st} what="sources" empty="No source seen in the last 24 hours (the trend analyzer keeps these figures: trends.enabled).">
        {(p) => (
          <table class={`top-sources top-${kind}`}>
            <thead>
              <tr>
                <th>{head}</th>
                <th class="num">Messages</th>
                <th class="num">Refused</th>
                <th class="num">Quarantined</th>
                <th>Last seen</th>
                <th>Policy</th>
              </tr>
            </thead>
            <tbody>
              {p.items.map((s) => (
                <tr key={s.key} data-key={s.key}>
                  <td class="addr">
                    <a href={link(s.key)} title={`Messages from ${s.key}`}>
                      {s.key}
                    </a>
                    {s.network && <span class="muted"> {s.network}</span>}
                  </td>
                  <td class="num">{s.messages}</td>
                  <td class="num" title="Recipients refused at RCPT and messages refused at DATA, per recipient offered">
                    {s.refused}
                    <span class="muted">{pct(s.refused_share)}</span>
                  </td>
                  <td class="num" title="Recipients whose copy was quarantined, per recipient offered">
                    {s.quarantined}
                    <span class="muted">{pct(s.quarantined_share)}</span>
                  </td>
                  <td>
                    <Time ms={s.last_seen} />
                  </td>
                  <td>
                    {s.policies.length === 0 ? (
                      <span class="muted">—</span>
                    ) : (
                      s.policies.map((x) => (
                        <a key={x.id} href="/ui/policies" data-policy={x.id} title={`${x.id}: ${x.action} ${x.target_kind} ${x.target}${x.for ? ` for ${x.for}` : ''}`}>
                          <Badge text={x.action} />{' '}
                        </a>
                      ))
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

function ActivePolicies({ tick }: { tick: number }) {
  const st = useLoad(() => get<Page<PolicyRow>>('/api/v1/policies?state=active&limit=10'), [tick]);
  return (
    <Section title="Active policies" actions={<a href="/ui/policies">all policies</a>}>
      <ShowList state={st} what="policies" empty="No live policies.">
        {(p) => (
          <table>
            <tbody>
              {p.items.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Badge text={r.action} />
                  </td>
                  <td>
                    {r.target_kind} <b>{r.target}</b>
                  </td>
                  <td class="muted">{r.source}</td>
                  <td>{r.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

function Outbreaks({ tick }: { tick: number }) {
  const st = useLoad(() => get<{ items: ClusterSummary[] }>('/api/v1/clusters?state=outbreak&limit=10'), [tick]);
  return (
    <Section title="Current outbreaks" actions={<a href="/ui/clusters">all clusters</a>}>
      <ShowList state={st} what="clusters" empty="No outbreak now.">
        {(p) => (
          <table>
            <tbody>
              {p.items.map((c) => (
                <tr key={c.id}>
                  <td>
                    <a href={`/ui/clusters/${c.id}`}>#{c.id}</a>
                  </td>
                  <td>{c.subject ?? '—'}</td>
                  <td class="num">{c.members} copies</td>
                  <td class="num">{c.ips} sources</td>
                  <td>
                    <Time ms={c.declared_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

function AuthFailures({ tick }: { tick: number }) {
  const st = useLoad(() => get<Page<EventRow>>('/api/v1/events?type=auth.failed,web.login_failed&limit=15'), [tick]);
  return (
    <Section title="Recent failed sign-ins">
      <ShowList state={st} what="events" empty="None.">
        {(p) => (
          <table>
            <tbody>
              {p.items.map((e) => (
                <tr key={e.id}>
                  <td>
                    <Time ms={e.ts} />
                  </td>
                  <td>{e.type === 'web.login_failed' ? 'center' : String(e.data.protocol ?? '')}</td>
                  <td class="addr">{String(e.data.user ?? e.data.name ?? '')}</td>
                  <td>{e.ip ?? '—'}</td>
                  <td class="muted">{String(e.data.reason ?? e.data.refused_by ?? '')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

/** The figures /metrics has about the queue, the quarantine and the store, by name; the rest is for Prometheus. */
const HEALTH: [RegExp, string][] = [
  [/^postern_queue_depth\{status="(\w+)"\}$/, 'recipients in the queue, $1'],
  [/^postern_relay_recipients_total\{outcome="(\w+)"\}$/, 'recipients $1 since start'],
  [/^postern_delivery_duration_seconds_count(?:\{route="(\w+)"\})?$/, 'delivery attempts, $1'],
  [/^postern_quarantine_size$/, 'copies held in quarantine'],
  [/^postern_analyzer_lag_seconds$/, 'trend analyzer behind (seconds)'],
  [/^postern_events_dropped$/, 'events not stored since start'],
];

/** Queue and store health from /metrics when it is there; otherwise counts of waiting recipients. */
async function queueHealth(): Promise<{ source: string; rows: [string, string][] }> {
  try {
    const text = await getText('/metrics');
    const rows: [string, string][] = [];
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const sp = line.lastIndexOf(' ');
      const key = line.slice(0, sp);
      for (const [re, label] of HEALTH) if (re.test(key)) rows.push([key.replace(re, label).replace(/, $/, ''), line.slice(sp + 1)]);
    }
    return { source: '/metrics', rows };
  } catch {
    const count = async (status: string) => {
      const p = await get<Page<MessageItem>>(`/api/v1/messages?status=${status}&limit=500`);
      return p.next_cursor ? '500+' : String(p.items.length);
    };
    const [queued, deferred] = await Promise.all([count('queued'), count('deferred')]);
    return { source: 'messages', rows: [['messages with recipients queued', queued], ['messages with recipients deferred', deferred]] };
  }
}

function QueueHealth({ tick }: { tick: number }) {
  const st = useLoad(queueHealth, [tick]);
  return (
    <Section title="Queue health">
      <Show state={st} what="metrics or messages">
        {(q) =>
          q.rows.length === 0 ? (
            <Empty>No queue figures.</Empty>
          ) : (
            <table>
              <tbody>
                {q.rows.map(([k, v]) => (
                  <tr key={k}>
                    <td>{k}</td>
                    <td class="num">
                      <Val v={v} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </Section>
  );
}

export function Overview() {
  const tick = useLiveTick('message,smtp.data.rejected,auth.failed,web.login_failed,policy,outbreak,cluster,quarantine,trends.finding,retro.failed,store.error');
  return (
    <div class="overview">
      <h1>Overview</h1>
      <Traffic tick={tick} />
      <div class="grid">
        <Alerts tick={tick} />
        <Latest tick={tick} />
        <TopSources tick={tick} kind="address" title="Top sources" head="Address (network)" link={(ip) => `/ui/messages${qs({ ip })}`} />
        <TopSources tick={tick} kind="domain" title="Top sender domains" head="Sender domain" link={(d) => `/ui/messages${qs({ sender: `@${d}` })}`} />
        <Outbreaks tick={tick} />
        <ActivePolicies tick={tick} />
        <AuthFailures tick={tick} />
        <QueueHealth tick={tick} />
      </div>
    </div>
  );
}

