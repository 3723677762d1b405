// Postern as a separate process (`node bin/postern.js …`), for tests that kill it or run the CLI beside it.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { until } from './postern.ts';

export const BIN = path.resolve(import.meta.dirname, '../../bin/postern.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

export class PosternChild {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d) => (this.output += d));
    proc.stderr?.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  }

  /**
   * Runs `postern start --config FILE` and resolves once it accepts mail. `entry`: a compiled main.js to run instead
   * of bin/postern.js (one process: a cluster's workers re-run bin/postern.js).
   */
  static async start(configFile: string, timeoutMs = 20_000, entry?: string): Promise<PosternChild> {
    let run = [BIN];
    if (entry) {
      // A launcher file rather than --eval: worker threads inherit the process's options, and --input-type is not
      // for files.
      const launcher = path.join(path.dirname(entry), 'run-main.mjs');
      fs.writeFileSync(launcher, `const { main } = await import(${JSON.stringify(pathToFileURL(entry).href)});\nprocess.exit(await main(process.argv.slice(2)));\n`);
      run = [launcher];
    }
    const proc = spawn(process.execPath, [...run, 'start', '--config', configFile], { cwd: path.dirname(configFile), stdio: 'pipe' });
    const c = new PosternChild(proc);
    let dead = false;
    void c.exited.then(() => (dead = true));
    await until(() => {
      if (dead) throw new Error(`postern exited during start:\n${c.output}`);
      return c.output.includes('accepting mail');
    }, timeoutMs, 'postern child to accept mail');
    return c;
  }

  /** SIGKILL: no shutdown code runs, like a crash or a power cut of the process. */
  async kill9(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Runs one CLI command to completion; resolves with its exit code and output (never rejects on exit code). */
export function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function writeFile(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}
