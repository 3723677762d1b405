// Server-rendered HTML for the web pages: escaping, the page frame and its stylesheet, and the words the pages
// use for sizes. The pages carry no script at all, so the CSP can forbid it.
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for element content and quoted attribute values. Everything from a message or a URL goes through it. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
}

/** The stylesheet, served at CSS_PATH: a file rather than a <style> block, so the CSP needs no inline exception. */
export const CSS_PATH = '/assets/postern.css';
export const CSS = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #5b6475; --bg: #f6f7f9; --card: #fff; --line: #dde1e8;
  --accent: #1f5fbf; --danger: #b3261e; --ok: #1e7d32; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #9aa3b2; --bg: #15181d; --card: #1d2128;
  --line: #2e343e; --accent: #7aa7ff; --danger: #ff8a80; --ok: #81c784; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
header { padding: 14px 24px; border-bottom: 1px solid var(--line); background: var(--card); font-weight: 600; }
main { max-width: 980px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 1.35rem; margin: 0 0 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; margin-bottom: 16px; }
.muted { color: var(--muted); }
.flash { border-left: 4px solid var(--ok); }
.error { border-left: 4px solid var(--danger); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 16px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 8px 6px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; color: var(--muted); font-size: 0.85rem; }
form.inline { display: inline; }
button { font: inherit; font-size: 0.85rem; padding: 4px 10px; margin: 2px 2px 2px 0; border-radius: 5px; cursor: pointer;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; font-size: 1rem; padding: 8px 18px; }
button.danger { color: var(--danger); }
button.primary.danger { background: var(--danger); border-color: var(--danger); color: #fff; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--bg); padding: 12px; border-radius: 6px; max-height: 70vh; overflow: auto; }
a { color: var(--accent); }
nav.pages { display: flex; gap: 16px; margin-top: 12px; }
form.login label { display: block; margin: 0 0 12px; color: var(--muted); }
form.login input { display: block; width: 100%; max-width: 360px; margin-top: 4px; font: inherit; padding: 6px 8px;
  border: 1px solid var(--line); border-radius: 5px; background: var(--bg); color: var(--fg); }
`;

/** A whole page. `body` is HTML the caller built from escaped parts. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>${esc(title)} · Postern</title><link rel="stylesheet" href="${CSS_PATH}"></head>
<body><header>Postern</header><main>
${body}
</main></body></html>`;
}

/** A page with one message: a refusal, an error, a result. */
export function notice(title: string, text: string, kind: 'error' | 'flash' = 'error'): string {
  return page(title, `<div class="card ${kind}"><h1>${esc(title)}</h1><p>${esc(text)}</p></div>`);
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
