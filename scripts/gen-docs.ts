// Writes the generated reference pages under docs/ from the code (npm run docs); docs.test.ts fails when they are stale.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATED_DOCS } from '../src/config/docs.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const [file, generate] of Object.entries(GENERATED_DOCS)) {
  const abs = path.join(root, file);
  const text = generate();
  const old = fs.existsSync(abs) ? fs.readFileSync(abs, 'utf8') : undefined;
  if (old === text) {
    console.log(`unchanged  ${file}`);
    continue;
  }
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, text);
  console.log(`${old === undefined ? 'created' : 'updated'}    ${file}`);
}
