#!/usr/bin/env node
// Entry point of the `postern` command: runs the compiled sources (dist/, npm run build) when they are up to date,
// else loads the TypeScript sources through tsx.
import path from 'node:path';
import { distFresh } from './dist-fresh.js';

const root = path.resolve(import.meta.dirname, '..');
let main;
if (process.env.POSTERN_FROM_SOURCE !== '1' && distFresh(root)) ({ main } = await import('../dist/main.js'));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/main.ts'));
}
// Exit explicitly: a cluster primary's IPC channels (and pooled sockets) would otherwise keep the process up.
process.exit(await main(process.argv.slice(2)));
