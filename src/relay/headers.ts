// Header edits made on the way out: our own X-Postern-* headers and Authentication-Results are removed from what
// arrived (so a sender cannot forge them); every copy gets our Authentication-Results, tagged copies the verdict.
import type { SymbolHit } from '../analysis/check.ts';

const OURS = /^(x-postern-[a-z-]*|authentication-results)\s*:/i;

function splitHead(raw: Buffer): { head: string; body: Buffer } {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { head: raw.toString('latin1'), body: Buffer.alloc(0) };
  return { head: raw.subarray(0, end + 2).toString('latin1'), body: raw.subarray(end + 2) };
}

/** Removes header fields (with their continuation lines) whose name matches `re`. */
function stripFields(head: string, re: RegExp, hostname: string): string {
  const lines = head.split('\r\n');
  const out: string[] = [];
  // One field with its continuation lines: the authserv-id may sit on a continuation line.
  let field: string[] = [];
  const flush = () => {
    const first = field[0];
    if (first === undefined) return;
    // Authentication-Results of other hosts are kept; only ones claiming our hostname are removed (RFC 8601 5).
    const drop = re.test(first) && (!/^authentication-results/i.test(first) || field.join(' ').toLowerCase().includes(hostname.toLowerCase()));
    if (!drop) out.push(...field);
    field = [];
  };
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && field.length) {
      field.push(line);
      continue;
    }
    flush();
    field.push(line);
  }
  flush();
  return out.join('\r\n');
}

/**
 * The method results (spf=…, dkim=…, dmarc=…, arc=…) of the message row's symbols: the auth check puts the RFC 8601
 * result string of each of its hits into the hit's detail.
 */
export function authResultsOf(symbolsJson: string): string[] {
  let hits: unknown;
  try {
    hits = JSON.parse(symbolsJson);
  } catch {
    return [];
  }
  if (!Array.isArray(hits)) return [];
  const out: string[] = [];
  for (const h of hits as { name?: unknown; detail?: unknown }[]) {
    if (typeof h?.name !== 'string' || !/^(SPF|DKIM|DMARC|ARC)_/.test(h.name) || !Array.isArray(h.detail)) continue;
    for (const d of h.detail) if (typeof d === 'string' && /^(spf|dkim|dmarc|arc)=[a-z]+/.test(d)) out.push(d);
  }
  // spf, dkim, dmarc, arc: the order in which a reader checks them.
  const rank = (r: string) => ['spf', 'dkim', 'dmarc', 'arc'].indexOf(r.slice(0, r.indexOf('=')));
  return out.sort((a, b) => rank(a) - rank(b)).slice(0, 16);
}

/** One method result as header text: one line, no ";" (the result separator), balanced comments, UTF-8 octets. */
function resultText(r: string): string {
  let t = r.replace(/[\x00-\x1f\x7f;]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 400);
  if ((t.match(/\(/g)?.length ?? 0) !== (t.match(/\)/g)?.length ?? 0)) t = t.replace(/[()]/g, ' ').replace(/\s+/g, ' ');
  return Buffer.from(t, 'utf8').toString('latin1');
}

export interface TagInfo {
  score: number;
  symbols: readonly Pick<SymbolHit, 'name' | 'score'>[];
  action: string;
  subjectPrefix?: string;
}

/**
 * `authResults` (authResultsOf) go into one Authentication-Results field under our hostname on every copy; a tagged
 * copy adds its verdict there as x-postern and gets the X-Postern-* fields.
 */
export function prepareCopy(raw: Buffer, hostname: string, tag?: TagInfo, authResults: readonly string[] = []): Buffer {
  const { head, body } = splitHead(raw);
  let h = stripFields(head, OURS, hostname);
  const results = authResults.map(resultText);
  if (tag) results.push(`x-postern=${tag.action} (score ${tag.score.toFixed(2)})`);
  const ar = results.length ? `Authentication-Results: ${hostname};\r\n\t${results.join(';\r\n\t')}\r\n` : '';
  h = belowOwnReceived(h, ar);
  if (tag) {
    const syms = tag.symbols
      .filter((s) => s.score !== 0)
      .map((s) => `${s.name}(${s.score.toFixed(2)})`)
      .join(', ');
    const add = `X-Postern-Score: ${tag.score.toFixed(2)}\r\n` + `X-Postern-Symbols: ${foldList(syms || 'none')}\r\n`;
    if (tag.subjectPrefix) {
      const re = /^subject:[ \t]*/im;
      h = re.test(h) ? h.replace(re, (m) => `${m}${tag.subjectPrefix} `) : `${h}Subject: ${tag.subjectPrefix}\r\n`;
    }
    h = add + h;
  }
  return Buffer.concat([Buffer.from(h, 'latin1'), body]);
}

/**
 * Our results go right below the Received field we added on top (as an MTA filter writes them), so that the topmost
 * trace field still says who took the message in; without that field, on top.
 */
function belowOwnReceived(h: string, field: string): string {
  if (!field || !/^received:/i.test(h)) return field + h;
  const end = h.search(/\r\n(?![ \t])/);
  return end < 0 ? h + field : h.slice(0, end + 2) + field + h.slice(end + 2);
}

function foldList(s: string): string {
  const parts = s.split(', ');
  const lines: string[] = [];
  let cur = '';
  for (const p of parts) {
    if (cur && cur.length + p.length > 70) {
      lines.push(cur + ',');
      cur = p;
    } else cur = cur ? `${cur}, ${p}` : p;
  }
  lines.push(cur);
  return lines.join('\r\n\t');
}
