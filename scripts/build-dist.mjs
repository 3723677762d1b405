// npm run build (and, when stale, before npm start): compiles src/ into dist/ with tsc, so that `postern` runs plain
// JavaScript instead of compiling TypeScript as it loads. That saves every process and worker thread the compiler's
// loader thread and its caches (tens of MB each) and seconds of start-up. bin/postern.js uses dist/ only while it is
// newer than every source file; otherwise it runs the sources through tsx, so a stale build is never run.
//   --if-stale   do nothing when dist/ is up to date
//   --out DIR    compile into DIR instead (a test of the build; bin/postern.js never runs it)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { distFresh, STAMP } from '../bin/dist-fresh.js';

const { values } = parseArgs({ options: { 'if-stale': { type: 'boolean' }, out: { type: 'string' } } });
const root = path.resolve(import.meta.dirname, '..');
if (values['if-stale'] && !values.out && distFresh(root)) process.exit(0);
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!fs.existsSync(tsc)) {
  console.warn('typescript is not installed (npm install without dev dependencies?): postern runs from its TypeScript sources through tsx.');
  process.exit(0);
}
const out = path.resolve(values.out ?? path.join(root, 'dist'));
const began = Date.now();
// The stamp goes first and last: a postern started meanwhile finds no stamp and runs the sources.
if (!values.out) fs.rmSync(path.join(root, STAMP), { force: true });
fs.rmSync(out, { recursive: true, force: true });
// Type errors are reported but still emit: the build is of what runs, and the tests hold the types.
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
if (!fs.existsSync(path.join(out, 'main.js'))) {
  console.error(`build failed (tsc exited with ${r.status}): postern runs from its TypeScript sources through tsx.`);
  process.exit(r.status || 1);
}
if (!values.out) fs.writeFileSync(path.join(root, STAMP), `${new Date().toISOString()}\n`);
console.log(`built ${path.relative(root, out) || out} in ${((Date.now() - began) / 1000).toFixed(1)} s`);
