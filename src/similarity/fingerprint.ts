// The similarity fingerprint of one message, made once from the shared MessageView: a TLSH digest and a MinHash
// sketch of the normalised text, exact hashes of attachments and archive members, and a structural signature.
import { createHash } from 'node:crypto';
import type { Attachment } from 'postal-mime';
import type { MessageView } from '../analysis/message-view.ts';
import { extractUrls } from '../analysis/checks/urls/extract.ts';
import { readZip } from '../analysis/checks/attachments/zip.ts';
import { inspectPackage } from '../analysis/checks/attachments/office.ts';
import { minhash, shingleHashes } from './minhash.ts';
import { nameWords, normaliseName, normalisedText, normalisedTokens } from './normalise.ts';
import { tlshOf } from './tlsh.ts';

export { FINGERPRINT_VERSION, type Fingerprint, type Structure } from './fingerprint-data.ts';
import { FINGERPRINT_VERSION, type Fingerprint } from './fingerprint-data.ts';

const MAX_DOMAINS = 20;
const MAX_FILES = 50;
/** Caps on opening an archive for member hashes; the attachments check enforces the strict ones and symbols. */
const ZIP_LIMITS = { maxMembers: 100, maxExpandedBytes: 32 * 1024 * 1024, maxRatio: 200, maxMemberBytes: 8 * 1024 * 1024 };

const OFFICE_PAYLOAD = /vbaproject\.bin$|\/embeddings\/|oleobject\d*\.bin$|activex\d*\.bin$/i;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function bytesOf(a: Attachment): Buffer {
  const c = a.content;
  if (typeof c === 'string') return Buffer.from(c, a.encoding === 'base64' ? 'base64' : 'utf8');
  return ArrayBuffer.isView(c) ? Buffer.from(c.buffer, c.byteOffset, c.byteLength) : Buffer.from(c);
}

const isZip = (b: Buffer): boolean => b.length > 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

/** The fingerprint's key in the view: made on the first call, shared with every later one. */
const KEY = {};

/**
 * The fingerprint of a message; computed once per view. A message that did not parse gets one of its headers. A text
 * with fewer than `minShingles` distinct shingles (similarity.min_shingles) is never compared by its text, so it gets
 * no sketch and no TLSH digest, the costly parts: it is matched by its files and shape only.
 */
export function fingerprintOf(view: MessageView, minShingles = 1): Promise<Fingerprint> {
  return view.derived(KEY, () => make(view, minShingles));
}

async function make(view: MessageView, minShingles: number): Promise<Fingerprint> {
  const [{ email }, scan] = await Promise.all([view.parse(), extractUrls(view)]);
  const body = scan.htmlText.length > scan.text.length ? scan.htmlText : scan.text;
  const tokens = normalisedTokens(view.subject ?? '', body, nameWords(view.header('to')));
  const shingles = shingleHashes(tokens);
  const attachments: string[] = [];
  const members: string[] = [];
  const types: string[] = [];
  const names: string[] = [];
  for (const a of (email?.attachments ?? []).slice(0, MAX_FILES)) {
    const bytes = bytesOf(a);
    types.push(a.mimeType.toLowerCase());
    if (a.filename) names.push(normaliseName(a.filename));
    // A logo the HTML shows (Content-ID) repeats across a sender's unrelated mail: it says nothing about a campaign.
    if (bytes.length === 0 || a.related || (a.contentId && a.mimeType.startsWith('image/'))) continue;
    attachments.push(sha256(bytes));
    if (isZip(bytes)) members.push(...(await memberHashes(bytes)));
  }
  const domains = [...new Set(scan.urls.map((u) => u.domain).filter((d) => d))].sort().slice(0, MAX_DOMAINS);
  const top = (view.header('content-type') ?? 'text/plain').split(';')[0].trim().toLowerCase();
  const layout = `${top}|${email?.text ? 't' : ''}${email?.html ? 'h' : ''}${types.length}`;
  types.sort();
  names.sort();
  const shape = createHash('sha256').update(JSON.stringify([layout, types, names])).digest('hex').slice(0, 16);
  const compared = shingles.length > 0 && shingles.length >= minShingles;
  const tlsh = compared ? tlshOf(normalisedText(tokens)) : undefined;
  return {
    v: FINGERPRINT_VERSION,
    ...(tlsh && { tlsh }),
    minhash: compared ? Array.from(minhash(shingles)) : [],
    shingles: shingles.length,
    attachments: [...new Set(attachments)],
    members: [...new Set(members)],
    structure: { layout, types, names, domains, shape },
  };
}

/**
 * SHA-256 of each member of a zip read in full, under the caps; a zip that does not open gives none. Of an Office
 * or OpenDocument package only the payload parts count (macros, embedded objects): its XML parts and styles are the
 * same in unrelated documents made by the same program.
 */
async function memberHashes(zip: Buffer): Promise<string[]> {
  const budget = { members: ZIP_LIMITS.maxMembers, expanded: ZIP_LIMITS.maxExpandedBytes };
  const listing = await readZip(zip, ZIP_LIMITS, budget, () => true);
  if (listing.error || listing.bomb.length) return [];
  const office = inspectPackage(listing.members.map((m) => m.name)).office;
  return listing.members
    .filter((m) => m.complete && m.bytes && m.bytes.length > 0 && (!office || OFFICE_PAYLOAD.test(m.name)))
    .map((m) => sha256(m.bytes as Buffer));
}
