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

export function toCrlf(b: Buffer): Buffer {
  const s = b.toString('latin1');
  return /(?<!\r)\n|\r(?!\n)/.test(s) ? Buffer.from(s.replace(/\r\n|\r|\n/g, '\r\n'), 'latin1') : b;
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
