// The HTML of the quarantine pages: a link's confirmation page, the recipient's list and one held message.
// Every value from a message is escaped; the held message's HTML is never rendered, only its text.
import { Parser } from 'htmlparser2';
import type { QuarantineEntry } from '../quarantine/service.ts';
import type { Config } from '../config/schema.ts';
import { cleanLine, formatTime, reasonInWords } from '../quarantine/digest-render.ts';
import { esc, formatSize, page } from './html.ts';

export type LinkVerb = 'release' | 'delete' | 'allow' | 'block';

const ASK: Record<LinkVerb, { title: (e: QuarantineEntry) => string; button: string; danger?: boolean }> = {
  release: { title: () => 'Release this message to your mailbox?', button: 'Release message' },
  delete: { title: () => 'Delete this message?', button: 'Delete message', danger: true },
  allow: { title: (e) => `Always accept mail from ${cleanLine(e.sender)} for you?`, button: 'Allow sender' },
  block: { title: (e) => `Refuse mail from ${cleanLine(e.sender)} for you from now on?`, button: 'Block sender', danger: true },
};

function details(e: QuarantineEntry, config: Config): string {
  return `<dl>
<dt>From</dt><dd>${esc(cleanLine(e.sender) || '(no sender: a bounce)')}</dd>
<dt>To</dt><dd>${esc(e.rcpt)}</dd>
<dt>Subject</dt><dd>${esc(cleanLine(e.subject ?? '', 300) || '(no subject)')}</dd>
<dt>Received</dt><dd>${esc(formatTime(e.created_at, config.quarantine.digest.timezone))}</dd>
<dt>Why held</dt><dd>${esc(reasonInWords(e, config))}</dd>
</dl>`;
}

/** The page a link opens: what it would do, and a button that POSTs it. Opening the link changes nothing. */
export function confirmPage(e: QuarantineEntry, verb: LinkVerb, token: string, config: Config): string {
  const a = ASK[verb];
  return page(
    a.title(e),
    `<div class="card"><h1>${esc(a.title(e))}</h1>
${details(e, config)}
<form method="post" action="/q/${esc(token)}">
<input type="hidden" name="confirm" value="1">
<button type="submit" class="primary${a.danger ? ' danger' : ''}">${esc(a.button)}</button>
</form></div>`,
  );
}

/** What a confirmed link did. */
export function resultPage(title: string, text: string, e: QuarantineEntry, config: Config): string {
  return page(title, `<div class="card flash"><h1>${esc(title)}</h1><p>${esc(text)}</p>${details(e, config)}</div>`);
}

/** The buttons of one entry on the recipient's page; each is a form with the page's CSRF token. */
function buttons(id: string, csrf: string): string {
  const b = (action: string, label: string, cls = '') =>
    `<form class="inline" method="post" action="/quarantine/${esc(encodeURIComponent(id))}/${action}"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit"${cls ? ` class="${cls}"` : ''}>${label}</button></form>`;
  return [
    b('release', 'Release'),
    b('delete', 'Delete', 'danger'),
    b('allow', 'Allow sender'),
    b('block', 'Block sender', 'danger'),
    b('ham', 'Not spam'),
    b('spam', 'Report spam', 'danger'),
  ].join('');
}

/** Fixed texts for the flash codes in /quarantine?done=CODE: the query carries a code, never text to show. */
export const FLASH: Record<string, { text: string; error?: boolean }> = {
  released: { text: 'Released: the message is on its way to your mailbox.' },
  deleted: { text: 'Deleted.' },
  allowed: { text: 'The sender is allowed: their mail to you is accepted from now on.' },
  blocked: { text: 'The sender is blocked: their mail to you is refused from now on.' },
  ham: { text: 'Reported as not spam and released to your mailbox.' },
  spam: { text: 'Reported as spam and deleted.' },
  not_held: { text: 'That message is no longer in quarantine (released, deleted or expired).', error: true },
  refused: { text: 'That could not be done: the sender cannot be allowed or blocked (a bounce has no sender).', error: true },
};

export interface ListView {
  rcpt: string;
  entries: QuarantineEntry[];
  total: number;
  offset: number;
  limit: number;
  flash?: string;
  csrf: string;
  config: Config;
}

export function listPage(v: ListView): string {
  const f = v.flash ? FLASH[v.flash] : undefined;
  const flash = f ? `<div class="card ${f.error ? 'error' : 'flash'}">${esc(f.text)}</div>` : '';
  const rows = v.entries
    .map(
      (e) => `<tr><td>${esc(cleanLine(e.sender) || '(bounce)')}</td><td><a href="/quarantine/${esc(encodeURIComponent(e.id))}">${esc(cleanLine(e.subject ?? '', 200) || '(no subject)')}</a></td>
<td>${esc(reasonInWords(e, v.config))}</td><td>${esc(formatTime(e.created_at, v.config.quarantine.digest.timezone))}</td><td>${esc(formatSize(e.size))}</td></tr>
<tr><td colspan="5">${buttons(e.id, v.csrf)}</td></tr>`,
    )
    .join('\n');
  const body = v.entries.length
    ? `<table><thead><tr><th>From</th><th>Subject</th><th>Why held</th><th>Received</th><th>Size</th></tr></thead><tbody>
${rows}
</tbody></table>`
    : '<p>Nothing is held for you.</p>';
  const nav: string[] = [];
  if (v.offset > 0) nav.push(`<a href="/quarantine?offset=${Math.max(v.offset - v.limit, 0)}">Newer</a>`);
  if (v.offset + v.limit < v.total) nav.push(`<a href="/quarantine?offset=${v.offset + v.limit}">Older</a>`);
  return page(
    'Your quarantine',
    `${flash}<div class="card"><h1>Quarantine of ${esc(v.rcpt)}</h1>
<p class="muted">${v.total} message${v.total === 1 ? '' : 's'} held for you. Held mail is deleted when its retention ends.</p>
${body}
${nav.length ? `<nav class="pages">${nav.join('')}</nav>` : ''}
<form method="post" action="/quarantine/logout"><input type="hidden" name="csrf" value="${esc(v.csrf)}"><button type="submit">Sign out</button></form>
</div>`,
  );
}

export interface MessageViewData {
  entry: QuarantineEntry;
  headers: { name: string; value: string }[];
  text: string;
  /** Why the text is incomplete or missing, if it is. */
  note?: string;
  attachments: { filename: string; mimeType: string; size: number }[];
  csrf: string;
  config: Config;
}

export function messagePage(m: MessageViewData): string {
  const hdrs = m.headers.map((h) => `<tr><th>${esc(h.name)}</th><td>${esc(h.value)}</td></tr>`).join('\n');
  const atts = m.attachments.length
    ? `<h2>Attachments</h2><ul>${m.attachments.map((a) => `<li>${esc(a.filename || '(unnamed)')} <span class="muted">${esc(a.mimeType)}, ${esc(formatSize(a.size))}</span></li>`).join('')}</ul>`
    : '';
  return page(
    cleanLine(m.entry.subject ?? '', 120) || 'Held message',
    `<p><a href="/quarantine">← Back to your quarantine</a></p>
<div class="card"><h1>${esc(cleanLine(m.entry.subject ?? '', 300) || '(no subject)')}</h1>
${details(m.entry, m.config)}
${buttons(m.entry.id, m.csrf)}</div>
<div class="card"><h2>Text</h2>${m.note ? `<p class="muted">${esc(m.note)}</p>` : ''}<pre>${esc(m.text)}</pre>${atts}</div>
<div class="card"><h2>Headers</h2><table>${hdrs}</table></div>`,
  );
}

const SKIP = new Set(['script', 'style', 'head', 'title', 'noscript', 'template']);
const BLOCK = /^(p|div|br|tr|li|h[1-6]|table|ul|ol|blockquote|pre|hr|section|article)$/;

/**
 * The words of an HTML body, for a message that has no text part. htmlparser2 does the tokenising (hostile markup
 * included); only text nodes are kept, so nothing of the markup can reach the page.
 */
export function htmlToText(html: string): string {
  let out = '';
  let skip = 0;
  const p = new Parser(
    {
      onopentagname(name) {
        if (SKIP.has(name)) skip++;
        else if (BLOCK.test(name)) out += '\n';
      },
      onclosetag(name) {
        if (SKIP.has(name)) skip = Math.max(skip - 1, 0);
        else if (BLOCK.test(name)) out += '\n';
      },
      ontext(t) {
        if (!skip) out += t;
      },
    },
    { decodeEntities: true },
  );
  p.write(html);
  p.end();
  return out.replace(/[ \t]+/g, ' ').replace(/\n\s*\n\s*\n+/g, '\n\n').trim();
}
