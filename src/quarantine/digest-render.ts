// The quarantine digest as a recipient reads it: an email-safe HTML part and a plain-text part listing what was held,
// each entry with its reason in words and its one-click links.
//
// Subjects and senders are chosen by whoever sent the held mail, so every one is cleaned of control and bidi
// characters and HTML-escaped; the HTML has no script, no style sheet and no remote image (mail clients strip or
// block them, and a digest must read the same everywhere), only tables with inline styles.
import type { Config } from '../config/schema.ts';
import { CHECKS } from '../analysis/checks/index.ts';
import type { SymbolGroup } from '../analysis/check.ts';
import type { QuarantineEntry } from './service.ts';

export interface EntryLinks {
  release: string;
  delete: string;
  allow: string;
  view: string;
}

export interface DigestLinks {
  /** The recipient's own quarantine page (a view link). */
  quarantine: string;
  /** Per entry id. */
  entries: Record<string, EntryLinks>;
}

export interface DigestInput {
  rcpt: string;
  /** Held entries; the newest max_entries are listed. */
  entries: readonly QuarantineEntry[];
  /** How many are held since the last digest, when more than `entries` were read. */
  total?: number;
  links: DigestLinks;
  config: Config;
  now: number;
}

export interface RenderedDigest {
  subject: string;
  html: string;
  text: string;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);

/**
 * Attacker-chosen text made safe to show on one line: C0/C1 controls and line breaks (which would forge lines in the
 * text part) become spaces, bidi overrides and zero-width characters (which disguise a sender) are dropped, and the
 * result is cut to `max` characters.
 */
export function cleanLine(s: string, max = 160): string {
  const flat = s
    .replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')
    .replace(/[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

// Words for symbol groups: what a recipient understands of why the score was high.
const GROUP_WORDS: Record<SymbolGroup, string> = {
  protocol: 'sloppy sending server',
  auth: 'failed sender authentication',
  headers: 'suspicious headers',
  envelope: 'suspicious sender address',
  content: 'spam-like content',
  urls: 'suspicious links',
  attachments: 'risky attachments',
  reputation: 'poor sender reputation',
  similarity: 'like other spam seen',
  business: 'imitates a known correspondent',
  policy: 'a policy',
};
const CHECK_WORDS: Record<string, string> = { bayes: 'Bayes' };

const SYMBOL_WORDS: ReadonlyMap<string, string> = new Map(
  CHECKS.flatMap((c) => Object.entries(c.symbols).map(([name, spec]) => [name, CHECK_WORDS[c.name] ?? GROUP_WORDS[spec.group]] as const)),
);

/** The symbols that raised the score most, as up to three distinct phrases. */
function topReasons(e: QuarantineEntry): string[] {
  const words: string[] = [];
  const hits = e.symbols.filter((s) => s.score > 0 && (!s.rcpt || s.rcpt === e.rcpt)).sort((a, b) => b.score - a.score);
  for (const s of hits) {
    const w = SYMBOL_WORDS.get(s.name);
    if (w && !words.includes(w)) words.push(w);
    if (words.length === 3) break;
  }
  return words;
}

/**
 * Why an entry was held, as one short sentence. The stored reason joins the decision's reasons with "; " (see
 * gateway/phases/data.ts): "score 9.40", "forced by X", "rule A / B → quarantine", "score +5 (A / B)", a policy's
 * own reason, or the mixed-recipients note.
 */
export function reasonInWords(e: QuarantineEntry, config: Config): string {
  const parts: string[] = [];
  for (const raw of e.reason.split('; ')) {
    const r = raw.trim();
    if (!r || /^score [+-]/.test(r) || r === 'quarantine') continue;
    if (/^score -?\d/.test(r) || r.startsWith('forced by ')) {
      const why = topReasons(e);
      const head = r.startsWith('forced by ') ? 'matched a rule that always holds or refuses' : `scored ${e.score.toFixed(1)} (threshold ${config.analysis.actions.quarantine})`;
      parts.push(`${head}: looks like spam${why.length ? ` — ${why.join(', ')}` : ''}`);
    } else if (r.startsWith('rule ')) {
      parts.push('held by a rule your administrator set for this sender or address');
    } else if (/held because others accepted the message$/.test(r)) {
      parts.push('refused for you but accepted for other recipients, so held instead');
    } else {
      parts.push(`held by a policy: ${r}`);
    }
  }
  if (!parts.length) parts.push(`scored ${e.score.toFixed(1)}`);
  return cleanLine([...new Set(parts)].join('; '), 240);
}

/** "30 Nov 2026, 09:17 CET" in the configured time zone. */
export function formatTime(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).format(ms);
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

interface Line {
  e: QuarantineEntry;
  sender: string;
  subject: string;
  reason: string;
  when: string;
  links: EntryLinks;
}

export function renderDigest(input: DigestInput): RenderedDigest {
  const { config, now } = input;
  const tz = config.quarantine.digest.timezone;
  const max = config.quarantine.digest.max_entries;
  const sorted = [...input.entries].sort((a, b) => b.created_at - a.created_at || a.id.localeCompare(b.id));
  const total = Math.max(input.total ?? 0, sorted.length);
  const shown = sorted.slice(0, max);
  const more = total - shown.length;
  const lines: Line[] = shown.map((e) => ({
    e,
    sender: cleanLine(e.sender || '(no sender: a bounce)', 120),
    subject: cleanLine(e.subject ?? '', 160) || '(no subject)',
    reason: reasonInWords(e, config),
    when: formatTime(e.created_at, tz),
    links: input.links.entries[e.id],
  }));
  const rcpt = cleanLine(input.rcpt, 254);
  const subject = `Quarantine: ${plural(total, 'message')} held for you`;
  const linkDays = config.quarantine.link_ttl_days;
  const linksUntil = formatTime(now + linkDays * 86_400_000, tz);
  const oldest = shown.length ? Math.min(...shown.map((e) => e.expires_at)) : now;
  const keep = `Held mail is kept for ${plural(config.quarantine.retention_days, 'day')}, then deleted; the oldest message listed here goes on ${formatTime(oldest, tz)}.`;
  const linkNote = `The links in this message work for ${plural(linkDays, 'day')} (until ${linksUntil}); release and delete links work once.`;
  const moreLine = more > 0 ? `${plural(more, 'more message')} ${more === 1 ? 'is' : 'are'} on your quarantine page.` : '';
  return {
    subject,
    text: renderText({ rcpt, total, lines, moreLine, keep, linkNote, quarantine: input.links.quarantine }),
    html: renderHtml({ rcpt, total, lines, moreLine, keep, linkNote, quarantine: input.links.quarantine, subject }),
  };
}

interface Parts {
  rcpt: string;
  total: number;
  lines: Line[];
  moreLine: string;
  keep: string;
  linkNote: string;
  quarantine: string;
}

function renderText(p: Parts): string {
  const out = [
    `${plural(p.total, 'message')} addressed to ${p.rcpt} ${p.total === 1 ? 'was' : 'were'} held in quarantine since your last digest.`,
    `Nothing here reached your mailbox. Release what you want to receive; the rest is deleted on its own.`,
    '',
    `Open your quarantine: ${p.quarantine}`,
    '',
  ];
  p.lines.forEach((l, i) => {
    out.push(
      `${i + 1}. ${l.subject}`,
      `   From:     ${l.sender}`,
      `   Received: ${l.when}`,
      `   Why:      ${l.reason}`,
      `   Release:      ${l.links.release}`,
      `   Delete:       ${l.links.delete}`,
      `   Allow sender: ${l.links.allow}`,
      `   View:         ${l.links.view}`,
      '',
    );
  });
  if (p.moreLine) out.push(p.moreLine, '');
  out.push(p.keep, p.linkNote, 'Each link asks you to confirm before it does anything.', '');
  return out.join('\n');
}

// Inline styles only: many mail clients drop <style> blocks.
const FONT = "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif";
const LINK = 'color:#1a56db;text-decoration:underline';

function a(href: string, label: string, style = LINK): string {
  return `<a href="${escapeHtml(href)}" style="${style}">${escapeHtml(label)}</a>`;
}

function renderHtml(p: Parts & { subject: string }): string {
  const rows = p.lines
    .map(
      (l) => `<tr><td style="padding:14px 16px;border-top:1px solid #e5e7eb;${FONT}">
<div style="font-size:15px;font-weight:600;color:#111827;word-break:break-word">${escapeHtml(l.subject)}</div>
<div style="font-size:13px;color:#374151;padding-top:2px;word-break:break-all">${escapeHtml(l.sender)} &middot; <span style="color:#6b7280">${escapeHtml(l.when)}</span></div>
<div style="font-size:13px;color:#92400e;padding-top:4px">${escapeHtml(l.reason)}</div>
<div style="font-size:13px;padding-top:8px">${a(l.links.release, 'Release')} &middot; ${a(l.links.delete, 'Delete')} &middot; ${a(l.links.allow, 'Allow sender')} &middot; ${a(l.links.view, 'View')}</div>
</td></tr>`,
    )
    .join('\n');
  const more = p.moreLine
    ? `<tr><td style="padding:14px 16px;border-top:1px solid #e5e7eb;font-size:14px;color:#374151;${FONT}">${escapeHtml(p.moreLine)} ${a(p.quarantine, 'Open your quarantine')}</td></tr>`
    : '';
  const intro = `${plural(p.total, 'message')} addressed to ${p.rcpt} ${p.total === 1 ? 'was' : 'were'} held in quarantine since your last digest. Nothing here reached your mailbox.`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(p.subject)}</title></head>
<body style="margin:0;padding:0;background:#f3f4f6">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f3f4f6"><tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="640" cellpadding="0" cellspacing="0" border="0" style="max-width:640px;width:100%;background:#ffffff;border:1px solid #e5e7eb;border-radius:6px">
<tr><td style="padding:20px 16px 8px;${FONT}">
<div style="font-size:20px;font-weight:700;color:#111827">Quarantine digest</div>
<div style="font-size:14px;color:#374151;padding-top:6px">${escapeHtml(intro)}</div>
<div style="padding-top:14px"><a href="${escapeHtml(p.quarantine)}" style="display:inline-block;background:#1a56db;color:#ffffff;text-decoration:none;font-size:14px;font-weight:600;padding:9px 16px;border-radius:4px">Open your quarantine</a></div>
</td></tr>
<tr><td style="padding:8px 0 0"><table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
${rows}
${more}
</table></td></tr>
<tr><td style="padding:14px 16px 18px;border-top:1px solid #e5e7eb;font-size:12px;color:#6b7280;${FONT}">
${escapeHtml(p.keep)}<br>${escapeHtml(p.linkNote)} Each link asks you to confirm before it does anything.
</td></tr>
</table>
</td></tr></table>
</body></html>
`;
}
