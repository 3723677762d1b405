// Starts a real Postern in-process on a free loopback port with a throw-away data directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseConfigText } from '../../src/config/load.ts';
import { startPostern, type Postern } from '../../src/app.ts';
import { silentLogger, createLogger } from '../../src/core/log.ts';
import type { Check } from '../../src/analysis/check.ts';
import { openStore, type StoreDb } from '../../src/store/db.ts';

export interface TestPostern {
  app: Postern;
  port: number;
  /** Base URL of the HTTP server (quarantine links and pages, the API); empty when web.enabled is off. */
  webUrl: string;
  dir: string;
  close(): Promise<void>;
}

/** Which store the tests run on: POSTERN_TEST_STORE=postgres uses the PostgreSQL at 127.0.0.1:5432/test. */
export const TEST_STORE = process.env.POSTERN_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
export const PG_URL = process.env.POSTERN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh PostgreSQL schema; the URL selects it through search_path. */
export async function freshPgSchema(): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`create schema ${schema}`);
  await c.end();
  const sep = PG_URL.includes('?') ? '&' : '?';
  return {
    url: `${PG_URL}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const d = new pg.Client({ connectionString: PG_URL });
      await d.connect();
      await d.query(`drop schema ${schema} cascade`);
      await d.end();
    },
  };
}

/**
 * A fresh store for a unit test: SQLite in a temporary directory, or a fresh schema of the test PostgreSQL with
 * POSTERN_TEST_STORE=postgres. `close` closes it and removes both.
 */
export async function openTestStore(): Promise<{ store: StoreDb; dir: string; close(): Promise<void> }> {
  const dir = tempDir();
  const schema = TEST_STORE === 'postgres' ? await freshPgSchema() : undefined;
  const store = await openStore({ url: schema?.url ?? '', dataDir: dir });
  return {
    store,
    dir,
    async close() {
      await store.close();
      await schema?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function tempDir(prefix = 'postern-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * `toml` is appended to a base config (data_dir in a temp dir, no greeting pause unless set).
 * Sections given in `toml` must not repeat the base's: the base only sets top-level keys and [log].
 */
export async function startTestPostern(toml = '', opts: { dir?: string; store?: 'sqlite' | 'postgres'; checks?: readonly Check[] } = {}): Promise<TestPostern> {
  const dir = opts.dir ?? tempDir();
  const store = opts.store ?? TEST_STORE;
  let pgSchema: Awaited<ReturnType<typeof freshPgSchema>> | undefined;
  let storeLine = '';
  if (store === 'postgres') {
    pgSchema = await freshPgSchema();
    storeLine = `\n[store]\nurl = ${JSON.stringify(pgSchema.url)}\n`;
  }
  const hasGreet = /\[gateway\.greet_pause\]/.test(toml);
  // Sender authentication asks DNS; a test that is not about it must not depend on what the machine's resolver
  // answers for the fixture domains (example.org has real SPF and DMARC records on the Internet).
  const noAuth = /\[analysis\.checks\.auth\]/.test(toml) ? '' : '[analysis.checks.auth]\nenabled = false\n';
  // The trend analyzer (a worker thread) runs only in the tests about it.
  const noTrends = /^\[trends[\].]/m.test(toml) ? '' : '[trends]\nenabled = false\n';
  // The analysis threads likewise run only in the tests that set analysis.threads; the others analyse on the event
  // loop, with the same function (analysis/analyse.ts), and save a thread's start-up each.
  let body = toml;
  if (!/^\s*threads\s*=/m.test(toml)) body = /^\[analysis\]\s*$/m.test(toml) ? toml.replace(/^\[analysis\]\s*$/m, '[analysis]\nthreads = 0') : `${toml}\n[analysis]\nthreads = 0\n`;
  const text = `data_dir = ${JSON.stringify(dir)}\n${body}\n${hasGreet ? '' : '[gateway.greet_pause]\nunknown_ms = 0\n'}${noAuth}${noTrends}${storeLine}`;
  const config = parseConfigText(text, 'test.toml');
  const app = await startPostern(
    { config, file: path.join(dir, 'postern.toml'), dataDir: dir },
    { listen: { host: '127.0.0.1', port: 0 }, outboundListen: { host: '127.0.0.1', port: 0 }, logger: process.env.POSTERN_TEST_LOG ? createLogger('debug') : silentLogger, relayPollMs: 200, checks: opts.checks, webListen: { host: '127.0.0.1', port: 0 }, imapListen: { host: '127.0.0.1', port: 0 }, imapTlsListen: { host: '127.0.0.1', port: 0 }, pop3Listen: { host: '127.0.0.1', port: 0 }, pop3TlsListen: { host: '127.0.0.1', port: 0 }, submissionListen: { host: '127.0.0.1', port: 0 }, submissionTlsListen: { host: '127.0.0.1', port: 0 } },
  );
  // The analyzer (when on) has loaded and caught up before the test begins: a test that starts an attack at once
  // must not race the thread's start-up on a loaded machine. Bounded, since a standby (another node leads) never drains.
  if (app.analyzer) await Promise.race([app.analyzer.drain(), new Promise((r) => setTimeout(r, 20_000).unref())]);
  await app.analysisThreads?.started();
  return {
    app,
    port: app.smtp.port,
    webUrl: app.web?.url ?? '',
    dir,
    async close() {
      await app.close();
      if (pgSchema) await pgSchema.drop().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `fn` returns a truthy value, polling. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
