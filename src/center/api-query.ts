// What the list APIs share: zod parsing that names the field in a 400, times as milliseconds or ISO 8601, and the
// opaque cursor of keyset pagination (the last key of a page; the next page starts after it).
import { z } from 'zod';
import { WebError } from './web-error.ts';

export const time = z.string().transform((s, ctx) => {
  const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (Number.isFinite(n)) return n;
  ctx.addIssue({ code: 'custom', message: 'expected milliseconds since the epoch or an ISO 8601 time such as 2026-01-31T08:00:00Z' });
  return z.NEVER;
});

/** Most items in one page of any list. */
export const MAX_PAGE = 500;
export const limit = (dflt: number) => z.coerce.number().int().min(1).max(MAX_PAGE).default(dflt);
export const cursor = z.string().max(200).optional();

/** Parses with zod; a failure is a 400 whose message names each field and what is wrong with it. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, where: 'query' | 'body' | 'path'): z.infer<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const msg = r.error.issues
    .map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys.join(', ') : i.path.join('.');
      return `${where}${keys ? ` ${keys}` : ''}: ${i.message}`;
    })
    .join('; ');
  throw new WebError(400, 'bad_request', msg);
}

/** The cursor after `key`: opaque to clients, so its form may change. */
export const encodeCursor = (key: string | number): string => Buffer.from(JSON.stringify({ k: key })).toString('base64url');

/** The key a cursor holds, of the type the list orders by; anything else is a 400. */
export function decodeCursor<T extends 'string' | 'number'>(c: string | undefined, type: T): (T extends 'string' ? string : number) | undefined {
  if (c === undefined) return undefined;
  try {
    const k = (JSON.parse(Buffer.from(c, 'base64url').toString()) as { k?: unknown }).k;
    if (typeof k === type) return k as T extends 'string' ? string : number;
  } catch {
    // Not ours: answered below.
  }
  throw new WebError(400, 'bad_request', 'query cursor: not a cursor this list gave out (use next_cursor from the previous page)');
}

/** A page of `limit` items from `rows` fetched with limit + 1: the extra row only says there is a next page. */
export function page<R, K extends string | number>(rows: R[], n: number, key: (r: R) => K): { items: R[]; next_cursor: string | null } {
  const items = rows.slice(0, n);
  return { items, next_cursor: rows.length > n ? encodeCursor(key(items[items.length - 1])) : null };
}

/** Text for a LIKE pattern with its wildcards taken out: a substring search, not a pattern language. */
export const likeText = (s: string) => `%${s.toLowerCase().replace(/[%_\\]/g, '')}%`;
