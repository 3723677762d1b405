// The building blocks of the list pages: the status line an action leaves, a loaded list with its empty line and
// "Next page", a search form kept in the address, and a list that grows by cursor ("More").
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, qs } from './api.ts';
import { Empty, ErrorNote, Show, type Loaded } from './components.tsx';
import { navigate, useLocation } from './router.ts';

/** What the last action did, or why it failed. */
export type Flash = { ok: boolean; text: ComponentChildren };

/** The reason an API call failed, for a status line. */
export const why = (err: unknown) => (err instanceof ApiError ? err.message : String(err));

/** The status line of the last action; a live region, so screen readers hear it. */
export function FlashNote({ flash }: { flash: Flash | null | undefined }) {
  if (!flash) return null;
  return (
    <p class={`note ${flash.ok ? 'flash' : 'error'}`} role="status">
      {flash.text}
    </p>
  );
}

/** The button to the next page of a cursor-paged list; nothing when the page is the last. */
export function NextPage({ cursor, go }: { cursor: string | null | undefined; go: (cursor: string) => void }) {
  if (!cursor) return null;
  return (
    <button type="button" onClick={() => go(cursor)}>
      Next page
    </button>
  );
}

interface Paged<T> {
  items: T[];
  next_cursor?: string | null;
}

/**
 * A loaded list: what went wrong, that it is loading, the `empty` line when it has no items, or the items through
 * `children`, followed by "Next page" when `next` is given and the page has a cursor.
 */
export function ShowList<P extends Paged<unknown>>({
  state,
  what,
  empty,
  next,
  children,
}: {
  state: Loaded<P>;
  what?: string;
  empty: ComponentChildren;
  next?: (cursor: string) => void;
  children: (page: P) => ComponentChildren;
}) {
  return (
    <Show state={state} what={what}>
      {(p) =>
        p.items.length === 0 ? (
          <Empty>{empty}</Empty>
        ) : (
          <>
            {children(p)}
            {next && <NextPage cursor={p.next_cursor} go={next} />}
          </>
        )
      }
    </Show>
  );
}

/**
 * A search form whose values live in the address, so a search can be linked: `query()` is what the address holds,
 * `form` what is typed, and submitting puts the form into the address of `path`. The form follows the address when
 * it changes (and when any of `resetOn` does).
 */
export function useQueryForm<F extends string>(fields: readonly F[], path: string, resetOn: unknown[] = []) {
  const loc = useLocation();
  const query = () => Object.fromEntries(fields.map((k) => [k, loc.query.get(k) ?? ''])) as Record<F, string>;
  const [form, setForm] = useState(query);
  const search = loc.query.toString();
  useEffect(() => setForm(query()), [search, ...resetOn]);

  const set = (k: F) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    navigate(`${path}${qs(form)}`);
  };
  const text = (k: F, label: string, ph: string) => (
    <label>
      {label}
      <input name={k} value={form[k]} placeholder={ph} onInput={set(k)} />
    </label>
  );
  const pick = (k: F, label: string, options: string[], any = 'any') => (
    <label>
      {label}
      <select name={k} value={form[k]} onChange={set(k)}>
        <option value="">{any}</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
  return { query, search, form, set, submit, text, pick };
}

export interface CursorList<P extends Paged<unknown>> {
  data?: P;
  error?: unknown;
  more: () => Promise<void>;
}

/**
 * A list that starts with the first page when `deps` change and grows by the next ones on more(); the last page's
 * other fields (a summary) replace the earlier ones. A failure keeps what was shown and says why.
 */
export function useCursorList<P extends Paged<unknown>>(load: (cursor?: string | null) => Promise<P>, deps: unknown[]): CursorList<P> {
  const [data, setData] = useState<P>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    setError(undefined);
    load().then(setData, setError);
  }, deps);

  async function more() {
    if (!data?.next_cursor) return;
    try {
      const p = await load(data.next_cursor);
      setData({ ...p, items: [...data.items, ...p.items] });
    } catch (e) {
      setError(e);
    }
  }
  return { data, error, more };
}

/** A cursor list on the page: its failure, loading, the `empty` line, the items through `children`, and "More". */
export function CursorItems<P extends Paged<unknown>>({ list, what, empty, children }: { list: CursorList<P>; what: string; empty: ComponentChildren; children: (page: P) => ComponentChildren }) {
  const { data, error } = list;
  return (
    <>
      {error !== undefined && <ErrorNote error={error} what={what} />}
      {data === undefined && error === undefined && <p class="note">Loading…</p>}
      {data?.items.length === 0 && <Empty>{empty}</Empty>}
      {data && data.items.length > 0 && children(data)}
      {data?.next_cursor && (
        <p>
          <button type="button" onClick={list.more}>
            More
          </button>
        </p>
      )}
    </>
  );
}
