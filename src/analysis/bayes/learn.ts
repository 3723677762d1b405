// Learning whole messages: parse once, tokenize, digest, and write to the store in batches.
import type { Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import { buildMessageView } from '../message-view.ts';
import { messageDigest, type BayesClass } from './classifier.ts';
import { tokenize } from './tokenize.ts';
import { learnBatch, type LearnItem, type LearnResult } from './store.ts';

/** The learning record of one message: its digest and tokens. */
export async function learnItem(file: Buffer, cls: BayesClass): Promise<LearnItem> {
  // The header splitter (like the gateway) reads CRLF lines; files on disk often have bare LF.
  const raw = toCrlf(file);
  const view = await buildMessageView(raw);
  return { digest: messageDigest(raw, view.headerBytes, view.header), cls, tokens: await tokenize(view) };
}

/** Every bare CR and bare LF as CRLF; the same buffer when there is none. On bytes, without a string of the message. */
export function toCrlf(b: Buffer): Buffer {
  let bare = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) if (i === 0 || b[i - 1] !== 13) bare++;
  for (let i = b.indexOf(13); i >= 0; i = b.indexOf(13, i + 1)) if (b[i + 1] !== 10) bare++;
  if (bare === 0) return b;
  const out = Buffer.allocUnsafe(b.length + bare);
  let o = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === 13 || c === 10) {
      out[o++] = 13;
      out[o++] = 10;
      if (c === 13 && b[i + 1] === 10) i++;
    } else out[o++] = c;
  }
  return out;
}

/** Learns messages from an iterable in batches of `batch`; calls `progress` after each message. */
export async function learnAll(
  db: Kysely<DB>,
  messages: Iterable<{ raw: Buffer; cls: BayesClass }>,
  opts: { batch?: number; progress?: (done: number) => void } = {},
): Promise<LearnResult & { failed: number }> {
  const total = { learned: 0, unchanged: 0, moved: 0, failed: 0 };
  const size = opts.batch ?? 200;
  let pending: LearnItem[] = [];
  let done = 0;
  const flush = async () => {
    const r = await learnBatch(db, pending);
    total.learned += r.learned;
    total.unchanged += r.unchanged;
    total.moved += r.moved;
    pending = [];
  };
  for (const m of messages) {
    try {
      pending.push(await learnItem(m.raw, m.cls));
    } catch {
      total.failed++;
    }
    done++;
    opts.progress?.(done);
    if (pending.length >= size) await flush();
  }
  if (pending.length) await flush();
  return total;
}
