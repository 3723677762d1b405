// npm run build (and, when stale, before npm start): compiles src/ into dist/ with tsc, so that `postern` runs plain
// JavaScript instead of compiling TypeScript as it loads. That saves every process and worker thread the compiler's
// loader thread and its caches (tens of MB each) and seconds of start-up. bin/postern.js uses dist/ only while it is
// newer than every source file; otherwise it runs the sources through tsx, so a stale build is never run.
// --if-stale: do nothing when dist/ is up to date.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { distFresh, STAMP } from '../bin/dist-fresh.js';

const root = path.resolve(import.meta.dirname, '..');
if (process.argv.includes('--if-stale') && distFresh(root)) process.exit(0);
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!fs.existsSync(tsc)) {
  console.warn('typescript is not installed (npm install without dev dependencies?): postern runs from its TypeScript sources through tsx.');
  process.exit(0);
}
const began = Date.now();
fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
// Type errors are reported but still emit: the build is of what runs, and the tests hold the types.
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (!fs.existsSync(path.join(root, 'dist', 'main.js'))) {
  console.error(`build failed (tsc exited with ${r.status}): postern runs from its TypeScript sources through tsx.`);
  process.exit(r.status || 1);
}
fs.writeFileSync(path.join(root, STAMP), `${new Date().toISOString()}\n`);
console.log(`built dist/ in ${((Date.now() - began) / 1000).toFixed(1)} s`);
