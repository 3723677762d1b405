// Header edits made on the way out: our own X-Postern-* headers are removed from what arrived (so a sender
// cannot forge them) and, for tagged copies, written fresh with the verdict.
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
  let dropping = false;
  for (const line of lines) {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!dropping) out.push(line);
      continue;
    }
    // Authentication-Results of other hosts are kept; only ones claiming our hostname are removed (RFC 8601 5).
    dropping = re.test(line) && (!/^authentication-results/i.test(line) || line.toLowerCase().includes(hostname.toLowerCase()));
    if (!dropping) out.push(line);
  }
  return out.join('\r\n');
}

export interface TagInfo {
  score: number;
  symbols: readonly Pick<SymbolHit, 'name' | 'score'>[];
  action: string;
  subjectPrefix?: string;
}

export function prepareCopy(raw: Buffer, hostname: string, tag?: TagInfo): Buffer {
  const { head, body } = splitHead(raw);
  let h = stripFields(head, OURS, hostname);
  if (tag) {
    const syms = tag.symbols
      .filter((s) => s.score !== 0)
      .map((s) => `${s.name}(${s.score.toFixed(2)})`)
      .join(', ');
    const add =
      `X-Postern-Score: ${tag.score.toFixed(2)}\r\n` +
      `X-Postern-Symbols: ${foldList(syms || 'none')}\r\n` +
      `Authentication-Results: ${hostname}; x-postern=${tag.action} (score ${tag.score.toFixed(2)})\r\n`;
    if (tag.subjectPrefix) {
      const re = /^subject:[ \t]*/im;
      h = re.test(h) ? h.replace(re, (m) => `${m}${tag.subjectPrefix} `) : `${h}Subject: ${tag.subjectPrefix}\r\n`;
    }
    h = add + h;
  }
  return Buffer.concat([Buffer.from(h, 'latin1'), body]);
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
