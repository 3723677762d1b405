// Entry of the trend analyzer's worker thread: the sources are TypeScript, so the thread loads them through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
