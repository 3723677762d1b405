// Requests to the center as a browser or a script makes them: a session cookie with its CSRF header, or a bearer
// token; a JSON body when given one; redirects answered, not followed.
/** A response whose json() is untyped, for tests that read any field. */
export type Res = Omit<Response, 'json'> & { json(): Promise<any> };

/** Who asks: a signed-in session (cookie and its CSRF token) or an API token; nobody when empty. */
export interface Who {
  cookie?: string;
  csrf?: string;
  token?: string;
}

export type WebInit = RequestInit & { json?: unknown; withCsrf?: boolean };

export function webRequest(base: string, pathname: string, who: Who = {}, init: WebInit = {}): Promise<Res> {
  const headers = new Headers(init.headers);
  if (who.cookie) headers.set('cookie', who.cookie);
  if (who.token) headers.set('authorization', `Bearer ${who.token}`);
  if (who.csrf && init.withCsrf !== false) headers.set('x-csrf-token', who.csrf);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  return fetch(`${base}${pathname}`, { redirect: 'manual', ...init, headers, body }) as Promise<Res>;
}
