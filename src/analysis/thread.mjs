// Entry of an analysis thread run from the sources: they are TypeScript, so the thread loads them through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./thread-main.ts');
