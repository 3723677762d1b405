// Run before `npm start`: builds the center's pages when ui/dist is missing, so a fresh clone starts with them.
// Without vite (an install that left out devDependencies) it says how to get them and lets the server start anyway.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ui = import.meta.dirname;
if (!fs.existsSync(path.join(ui, 'dist', 'index.html'))) {
  const vite = path.join(ui, '..', 'node_modules', 'vite', 'bin', 'vite.js');
  if (!fs.existsSync(vite)) {
    console.warn('ui/dist is missing and vite is not installed: the center answers /ui/ with "not built". Run `npm install` then `npm run build:ui`.');
  } else {
    const r = spawnSync(process.execPath, [vite, 'build', ui, '--logLevel', 'warn'], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}
