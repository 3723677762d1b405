// The HTML of signing in and out: the form, and who is signed in. Built like the quarantine pages (center/html.ts):
// no script, every value escaped.
import { esc, page } from '../html.ts';
import type { Principal } from './guard.ts';

/** The sign-in form; `error` is one of our own sentences, `name` what was typed (shown again, escaped). */
export function loginPage(o: { next?: string; error?: string; name?: string }): string {
  return page(
    'Sign in',
    `<div class="card${o.error ? ' error' : ''}"><h1>Sign in</h1>
${o.error ? `<p>${esc(o.error)}</p>` : '<p class="muted">The monitoring center of Postern. Accounts are made by an administrator with <code>postern user add</code>.</p>'}
<form class="login" method="post" action="/login">
<label>Name <input name="name" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="64" value="${esc(o.name ?? '')}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"></label>
${o.next ? `<input type="hidden" name="next" value="${esc(o.next)}">` : ''}<button type="submit" class="primary">Sign in</button>
</form></div>`,
  );
}

/** Who is signed in, with the sign-out button (a form, so it carries the CSRF token). */
export function signedInPage(p: Principal): string {
  const addresses = p.addresses?.length ? `<dt>Addresses</dt><dd>${p.addresses.map(esc).join('<br>')}</dd>` : '';
  return page(
    'Signed in',
    `<div class="card flash"><h1>Signed in as ${esc(p.name)}</h1>
<dl><dt>Role</dt><dd>${esc(p.role)}</dd>${addresses}</dl>
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${esc(p.csrf ?? '')}"><button type="submit">Sign out</button></form>
</div>`,
  );
}
