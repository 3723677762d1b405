#!/usr/bin/env node
// Entry point of the `postern` command: loads the TypeScript sources through tsx and runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
// Exit explicitly: a cluster primary's IPC channels (and pooled sockets) would otherwise keep the process up.
process.exit(await main(process.argv.slice(2)));
