// HTML (and SVG) attachments: scripts that assemble a file in the browser and save it (HTML smuggling), password
// forms that post to another site, and scripts that write a page they decode first (the usual cloak of both).
import { Parser } from 'htmlparser2';
import { getDomain } from 'tldts';

export interface HtmlFacts {
  smuggling: boolean;
  /** Registrable domains a password field is sent to. */
  credentialTargets: string[];
  obfuscated: boolean;
}

const BLOB = /\bnew\s+Blob\s*\(|msSaveOrOpenBlob|msSaveBlob|createObjectURL/;
const DOWNLOAD_JS = /\.download\s*=|setAttribute\s*\(\s*['"]download['"]/;
/** What hands the assembled file to the user: a save dialog, a synthetic click, a navigation. */
const TRIGGER = /msSaveOrOpenBlob|msSaveBlob|\.click\s*\(\s*\)|location(?:\.href)?\s*=|window\.open\s*\(/;
const SENDS = /\bfetch\s*\(|XMLHttpRequest|\$\.(?:ajax|post)\s*\(|sendBeacon|\baxios\b/;
const URL_IN_JS = /https?:\/\/([a-z0-9.-]{1,253})/gi;
const WRITES_DECODED =
  /document\.write(?:ln)?\s*\(\s*(?:window\.)?(?:unescape|atob|decodeURIComponent|escape)\s*\(|\beval\s*\(\s*(?:window\.)?(?:unescape|atob|decodeURIComponent)\s*\(|eval\s*\(\s*function\s*\(\s*p\s*,\s*a\s*,\s*c\s*,\s*k\s*,\s*e/;

const MAX_SCRIPT_CHARS = 1024 * 1024;
const LONG_BASE64 = 1024;

/**
 * Length of the longest run of base64 characters, in one pass. Line breaks do not end a run: atob() skips ASCII
 * white space, so a payload wrapped into lines (as base64 tools write it) decodes just the same.
 */
function longestBase64Run(s: string): number {
  let best = 0;
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const b64 = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
    if (b64) {
      run++;
      if (run > best) best = run;
    } else if (c !== 10 && c !== 13) run = 0;
  }
  return best;
}

function foreignDomain(url: string, ours: readonly string[]): string | undefined {
  const m = /^\s*(?:https?:)?\/\/([^/?#\s:]+)/i.exec(url);
  if (!m) return undefined;
  const host = m[1].toLowerCase();
  const domain = getDomain(host, { allowPrivateDomains: true }) ?? host;
  return ours.includes(domain) || ours.includes(host) ? undefined : domain;
}

const ENCODED_LITERAL = /\b(unescape|decodeURIComponent|atob)\s*\(\s*(['"])([^'"]{16,})\2\s*\)/g;

/** The pages a script decodes from string literals before writing or running them, one level, within the cap. */
function decodedPages(script: string): string[] {
  const out: string[] = [];
  let budget = MAX_SCRIPT_CHARS;
  for (const m of script.matchAll(ENCODED_LITERAL)) {
    let page: string;
    try {
      if (m[1] === 'atob') page = Buffer.from(m[3], 'base64').toString('utf8');
      else if (m[1] === 'decodeURIComponent') page = decodeURIComponent(m[3]);
      else page = unescape(m[3]);
    } catch {
      continue;
    }
    if (!page.includes('<')) continue;
    out.push(page.slice(0, budget));
    budget -= page.length;
    if (budget <= 0 || out.length >= 8) break;
  }
  return out;
}

export function inspectHtml(text: string, ourDomains: readonly string[], depth = 0): HtmlFacts {
  let script = '';
  let inScript = 0;
  let anchorDownload = false;
  let longDataHref = false;
  const formActions: (string | undefined)[] = [];
  let passwordAnywhere = false;
  const targets = new Set<string>();
  const parser = new Parser(
    {
      onopentag(name, a) {
        if (name === 'script') inScript++;
        else if (name === 'a') {
          if ('download' in a) anchorDownload = true;
          const href = a.href ?? '';
          if (/^\s*data:[^,]*;base64,/i.test(href) && href.length > LONG_BASE64) longDataHref = true;
        } else if (name === 'form') formActions.push(a.action);
        else if (name === 'input' && (a.type ?? '').toLowerCase() === 'password') {
          passwordAnywhere = true;
          if (formActions.length) {
            const action = formActions[formActions.length - 1];
            const d = action === undefined ? undefined : foreignDomain(action, ourDomains);
            if (d) targets.add(d);
          }
        }
      },
      ontext(t) {
        if (inScript && script.length < MAX_SCRIPT_CHARS) script += t;
      },
      onclosetag(name) {
        if (name === 'script' && inScript) inScript--;
        else if (name === 'form') formActions.pop();
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(text);
  parser.end();

  const blob = BLOB.test(script);
  const longB64 = longestBase64Run(script) >= LONG_BASE64;
  const download = anchorDownload || DOWNLOAD_JS.test(script);
  // A saved web report may use Blob for a "download CSV" button; smuggling also carries the file itself, as a long
  // base64 run, and hands it over without the user asking.
  const smuggling = (blob && longB64 && (download || TRIGGER.test(script))) || (anchorDownload && longDataHref);
  if (passwordAnywhere && SENDS.test(script)) {
    for (const m of script.matchAll(URL_IN_JS)) {
      const d = foreignDomain(`//${m[1]}`, ourDomains);
      if (d) targets.add(d);
      if (targets.size >= 8) break;
    }
  }
  const obfuscated = WRITES_DECODED.test(script);
  let hidden = smuggling;
  // What the cloak hides is judged as well: the decoded page is usually the sign-in form or the smuggling script.
  if (obfuscated && depth === 0) {
    for (const page of decodedPages(script)) {
      const inner = inspectHtml(page, ourDomains, depth + 1);
      hidden ||= inner.smuggling;
      for (const d of inner.credentialTargets) targets.add(d);
    }
  }
  return { smuggling: hidden, credentialTargets: [...targets], obfuscated };
}
