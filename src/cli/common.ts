// Shared CLI helpers: option parsing, config loading, opening the store read-write for admin commands.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, resolveSecret, type LoadedConfig } from '../config/load.ts';
import { openStore, type StoreDb } from '../store/db.ts';

export function args<T extends ParseArgsConfig['options']>(argv: string[], options: T) {
  return parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, ...options }, allowPositionals: true, strict: true });
}

export function load(file: string | undefined, create = false): LoadedConfig {
  return loadConfig(file ?? 'postern.toml', { create });
}

export async function withStore<T>(loaded: LoadedConfig, fn: (s: StoreDb) => Promise<T>): Promise<T> {
  const s = await openStore({ url: loaded.config.store.url, dataDir: loaded.dataDir, password: resolveSecret(loaded.config.store.password) });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

export const fmtTime = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
