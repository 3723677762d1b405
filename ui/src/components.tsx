// Pieces every page uses: loading a resource, showing its failure, times, generic values, tables.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.ts';

export interface Loaded<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `fn` when `deps` change and on reload(); keeps the last data while reloading, so lists do not flicker. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function ErrorNote({ error, what }: { error: unknown; what?: string }) {
  if (error instanceof ApiError && error.unavailable) {
    return <p class="note unavailable">Not available: this server has no {what ?? 'such'} API yet.</p>;
  }
  if (error instanceof ApiError) {
    return (
      <p class="note error" role="alert">
        {error.status === 403 ? 'Not allowed' : 'Failed'}: {error.message}
      </p>
    );
  }
  return (
    <p class="note error" role="alert">
      Failed: {String((error as Error)?.message ?? error)}
    </p>
  );
}

/** Shows the data through `children`, or what went wrong, or that it is loading. */
export function Show<T>({ state, what, children }: { state: Loaded<T>; what?: string; children: (data: T) => ComponentChildren }) {
  if (state.error !== undefined) return <ErrorNote error={state.error} what={what} />;
  if (state.data === undefined) return <p class="note">Loading…</p>;
  return <>{children(state.data)}</>;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local time, to the second; the date only when it is not today. */
export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return t;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
}

export function Time({ ms }: { ms: number | null | undefined }) {
  if (ms === null || ms === undefined) return <span class="muted">—</span>;
  return <time dateTime={new Date(ms).toISOString()} title={new Date(ms).toISOString()}>{fmtTime(ms)}</time>;
}

export const fmtScore = (n: number | null | undefined) => (typeof n === 'number' ? n.toFixed(1) : '—');

export function Score({ n }: { n: number | null | undefined }) {
  const cls = typeof n !== 'number' ? '' : n >= 8 ? 'bad' : n >= 5 ? 'warn' : n < 0 ? 'good' : '';
  return <span class={`score ${cls}`}>{fmtScore(n)}</span>;
}

export function Badge({ text }: { text: string | null | undefined }) {
  if (!text) return <span class="muted">—</span>;
  return <span class={`badge b-${text.replace(/[^a-z_]/g, '')}`}>{text}</span>;
}

const MAX_ITEMS = 12;

/** Any JSON value, compactly: objects as "key: value" lists, arrays joined; never as HTML. */
export function Val({ v }: { v: unknown }) {
  if (v === null || v === undefined || v === '') return <span class="muted">—</span>;
  if (typeof v !== 'object') return <>{String(v)}</>;
  if (Array.isArray(v)) {
    // Long lists (fingerprints, hash sets) are cut: the page is for reading.
    if (v.length > MAX_ITEMS) return <>{v.slice(0, MAX_ITEMS).map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')} … ({v.length - MAX_ITEMS} more)</>;
    if (v.every((x) => typeof x !== 'object' || x === null)) return <>{v.join(', ')}</>;
    return (
      <ul class="plain">
        {v.map((x, i) => (
          <li key={i}>
            <Val v={x} />
          </li>
        ))}
      </ul>
    );
  }
  return (
    <span class="kv">
      {Object.entries(v as Record<string, unknown>).map(([k, x]) => (
        <span key={k}>
          <b>{k}</b> <Val v={x} />{' '}
        </span>
      ))}
    </span>
  );
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section>
      <h2>
        {title}
        {actions && <span class="actions">{actions}</span>}
      </h2>
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="note empty">{children}</p>;
}

/** The worst action of a message's recipients, in the order the policy merge uses. */
export const ACTION_ORDER = ['reject', 'defer', 'quarantine', 'redirect', 'tag', 'accept'] as const;
export function worst(actions: string[]): string {
  for (const a of ACTION_ORDER) if (actions.includes(a)) return a;
  return actions[0] ?? 'accept';
}

/** Events in time order with their data, compactly. */
export function Events({ events, empty = 'None.' }: { events: { id?: number; ts: number; type: string; ip?: string | null; data: Record<string, unknown> }[]; empty?: string }) {
  if (!events.length) return <Empty>{empty}</Empty>;
  const sorted = [...events].sort((a, b) => a.ts - b.ts || (a.id ?? 0) - (b.id ?? 0));
  return (
    <table class="events">
      <tbody>
        {sorted.map((e, i) => (
          <tr key={e.id ?? i}>
            <td>
              <Time ms={e.ts} />
            </td>
            <td class="type">{e.type}</td>
            <td>
              <Val v={omit(e.data)} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Event data without the similarity fingerprint: numbers for machines, shown on the cluster pages' terms. */
const omit = ({ fp: _fp, ...rest }: Record<string, unknown>) => rest;

/** A message's subject (linked to its story), its worst action over its recipients and its score, as table cells. */
export function MessageCells({ m }: { m: { id: string; subject: string | null; score: number; recipients: { action: string }[] } }) {
  return (
    <>
      <td>
        <a href={`/ui/messages/${encodeURIComponent(m.id)}`}>{m.subject ?? '(no subject)'}</a>
      </td>
      <td>
        <Badge text={worst(m.recipients.map((r) => r.action))} />
      </td>
      <td class="num">
        <Score n={m.score} />
      </td>
    </>
  );
}
