// Talking to the center's API: same-origin fetch with the session cookie, the CSRF header on every change, and
// errors that say whether the server lacks the endpoint (older or partial builds) or refused the request.

export type Role = 'admin' | 'auditor' | 'user';

export interface Me {
  name: string;
  role: Role;
  addresses: string[];
  csrf?: string;
}

/** The API's error: the HTTP status with the server's code and message ({ error: { code, message } }). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  /** The server has no such endpoint: the page says so instead of failing. */
  get unavailable(): boolean {
    return this.status === 404 && this.code === 'not_found' && this.message.startsWith('no such page');
  }
}

let csrf: string | undefined;
let onSignedOut: () => void = () => undefined;

export function setSession(me: Me | undefined, signedOut?: () => void): void {
  csrf = me?.csrf;
  if (signedOut) onSignedOut = signedOut;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    const err = new ApiError(res.status, e?.code ?? 'http_' + res.status, e?.message ?? `${res.status} ${res.statusText}`);
    if (res.status === 401 && path !== '/api/v1/session') onSignedOut();
    throw err;
  }
  return json as T;
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => request<T>('POST', path, body);
export const del = <T>(path: string) => request<T>('DELETE', path);
export const patch = <T>(path: string, body: unknown) => request<T>('PATCH', path, body);

/** Plain text (the Prometheus exposition at /metrics). */
export async function getText(path: string): Promise<string> {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'text/plain' } });
  if (!res.ok) throw new ApiError(res.status, res.status === 404 ? 'not_found' : 'http_' + res.status, res.status === 404 ? 'no such page' : `${res.status} ${res.statusText}`);
  return res.text();
}

/** A query string from the set fields only. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
