// Runs postern commands in this process, one at a time (they share the console), capturing what they print.
import { vi } from 'vitest';
import { main } from '../../src/main.ts';

export interface CliResult {
  code: number;
  /** Each printed line followed by a newline. */
  stdout: string;
  stderr: string;
}

let queue: Promise<unknown> = Promise.resolve();

export function inProcess(args: string[]): Promise<CliResult> {
  const next = queue.then(async () => {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...x: unknown[]) => void out.push(x.join(' ')));
    const error = vi.spyOn(console, 'error').mockImplementation((...x: unknown[]) => void err.push(x.join(' ')));
    try {
      const code = await main(args);
      return { code, stdout: out.map((l) => l + '\n').join(''), stderr: err.map((l) => l + '\n').join('') };
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
  queue = next.catch(() => undefined);
  return next;
}
