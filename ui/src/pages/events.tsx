// The event log: everything Postern records (connections, decisions, deliveries, logins, findings, admin actions),
// newest first, filtered by type or prefix, client address, message or connection, with older pages by cursor.
// "Follow" adds new events as they happen from the server's event stream (/api/v1/stream), at most FOLLOW_MAX kept.
import { useEffect, useState } from 'preact/hooks';
import { get, qs } from '../api.ts';
import { Empty, Show, Time, Val, useLoad } from '../components.tsx';
import { navigate } from '../router.ts';
import type { EventRow, Page } from '../types.ts';

const FOLLOW_MAX = 500;

/** Types that most often answer "what happened": the choices of the type box (it takes any type or prefix). */
const COMMON = ['smtp', 'message.accepted', 'smtp.data.rejected', 'relay', 'quarantine', 'auth', 'trends', 'outbreak', 'audit', 'web', 'settings.changed'];

interface Filters {
  type: string;
  ip: string;
  msg_id: string;
  conn_id: string;
}

const FIELDS: [keyof Filters, string, string][] = [
  ['type', 'Types', 'smtp, relay.delivered, …'],
  ['ip', 'Client address', '192.0.2.7'],
  ['msg_id', 'Queue id', ''],
  ['conn_id', 'Connection', ''],
];

function fromQuery(q: URLSearchParams): Filters {
  return { type: q.get('type') ?? '', ip: q.get('ip') ?? '', msg_id: q.get('msg_id') ?? '', conn_id: q.get('conn_id') ?? '' };
}

/** Whether a streamed event passes the filters the list was asked for. */
function passes(e: EventRow, f: Filters): boolean {
  const types = f.type.split(',').map((t) => t.trim().replace(/\.\*$/, '')).filter(Boolean);
  if (types.length && !types.some((t) => e.type === t || e.type.startsWith(`${t}.`))) return false;
  if (f.ip && e.ip !== f.ip) return false;
  if (f.msg_id && e.msg_id !== f.msg_id) return false;
  return !(f.conn_id && e.conn_id !== f.conn_id);
}

function Row({ e }: { e: EventRow }) {
  const { fp: _fp, ...data } = e.data;
  return (
    <tr data-type={e.type}>
      <td>
        <Time ms={e.ts} />
      </td>
      <td class="type">{e.type}</td>
      <td class="addr">{e.ip ?? ''}</td>
      <td class="addr">{e.msg_id ? <a href={`/ui/messages/${encodeURIComponent(e.msg_id)}`}>{e.msg_id}</a> : ''}</td>
      <td>
        <Val v={data} />
      </td>
    </tr>
  );
}

export function EventsPage({ query }: { query: URLSearchParams }) {
  const applied = fromQuery(query);
  const [form, setForm] = useState<Filters>(applied);
  const [cursor, setCursor] = useState<string | null>(null);
  const [follow, setFollow] = useState(false);
  const [fresh, setFresh] = useState<EventRow[]>([]);
  // The stream is open: from then on nothing that happens is missed (until then the page says it is connecting).
  const [open, setOpen] = useState(false);
  const key = JSON.stringify(applied);
  const st = useLoad(() => get<Page<EventRow>>(`/api/v1/events${qs({ ...applied, limit: 100, cursor })}`), [key, cursor]);

  useEffect(() => {
    setFresh([]);
    setOpen(false);
    if (!follow || typeof EventSource !== 'function') return;
    const types = applied.type.split(',').map((t) => t.trim()).filter(Boolean).join(',');
    const es = new EventSource(`/api/v1/stream${qs({ types: types || undefined })}`);
    es.onmessage = (m) => {
      let e: EventRow;
      try {
        const v = JSON.parse(m.data as string) as Partial<EventRow> & Pick<EventRow, 'ts' | 'type' | 'data'>;
        e = { ...v, id: 0, ip: v.ip ?? null, conn_id: v.conn_id ?? null, msg_id: v.msg_id ?? null };
      } catch {
        return;
      }
      if (passes(e, applied)) setFresh((xs) => [e, ...xs].slice(0, FOLLOW_MAX));
    };
    es.onopen = () => setOpen(true);
    return () => es.close();
  }, [follow, key]);

  const apply = (e: Event) => {
    e.preventDefault();
    setCursor(null);
    navigate(`/ui/events${qs({ type: form.type || undefined, ip: form.ip || undefined, msg_id: form.msg_id || undefined, conn_id: form.conn_id || undefined })}`);
  };
  return (
    <div>
      <h1>Events</h1>
      <form class="search" onSubmit={apply}>
        {FIELDS.map(([k, label, hint]) => (
          <label key={k}>
            {label}
            <input name={k} value={form[k]} placeholder={hint} list={k === 'type' ? 'event-types' : undefined} onInput={(ev) => setForm({ ...form, [k]: (ev.target as HTMLInputElement).value })} />
          </label>
        ))}
        <datalist id="event-types">
          {COMMON.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        <button type="submit">Show</button>
        <label class="inline">
          <input type="checkbox" name="follow" checked={follow} onChange={(ev) => setFollow((ev.target as HTMLInputElement).checked)} /> Follow new events
        </label>
      </form>
      {follow && (
        <p class="note" role="status">
          {open
            ? `Following: ${fresh.length ? `${fresh.length} new event${fresh.length === 1 ? '' : 's'} since` : 'no new event yet'} (at most ${FOLLOW_MAX} kept).`
            : 'Connecting to the event stream…'}
        </p>
      )}
      <Show state={st} what="events">
        {(p) =>
          !p.items.length && !fresh.length ? (
            <Empty>No event matches.</Empty>
          ) : (
            <>
              <table class="events event-log">
                <thead>
                  <tr>
                    <th>Time</th>
                    <th>Type</th>
                    <th>Client</th>
                    <th>Message</th>
                    <th>Data</th>
                  </tr>
                </thead>
                <tbody>
                  {fresh.map((e, i) => (
                    <Row key={`new-${i}-${e.ts}`} e={e} />
                  ))}
                  {p.items.map((e) => (
                    <Row key={e.id} e={e} />
                  ))}
                </tbody>
              </table>
              {p.next_cursor && (
                <button type="button" onClick={() => setCursor(p.next_cursor)}>
                  Older events
                </button>
              )}
            </>
          )
        }
      </Show>
    </div>
  );
}
