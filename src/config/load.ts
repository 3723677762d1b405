// Reads postern.toml, validates it against the schema, resolves paths and freezes the result.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';
import { validateCheckOptions, validateScoreNames } from '../analysis/registry-options.ts';

export interface LoadedConfig {
  config: Readonly<Config>;
  file: string;
  /** Absolute data directory. */
  dataDir: string;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: readonly string[],
  ) {
    super(`${file}: invalid configuration\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_CONFIG_TEXT = `# Postern configuration. Every key, its default and its meaning: docs/config.md
# or \`postern config show --effective\`.

data_dir = "./data"

[gateway]
listen = "127.0.0.1:2525"
hostname = "postern.localhost"
domains = ["localhost"]

# Without a downstream, accepted mail lands in Maildirs under data_dir/mailboxes/.
# [relay.downstream]
# host = "127.0.0.1"
# port = 25
# protocol = "smtp"   # or "lmtp"

# The HTTP server: quarantine links from digests, the recipients' quarantine pages, the API (docs/quarantine.md).
[web]
listen = "127.0.0.1:8025"
# public_url = "https://mail-gw.example.com"   # the address users reach it at, used in digest links

[analysis.actions]
tag = 5
quarantine = 8
reject = 15

[log]
level = "info"
`;

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map(String).join('.') : '(root)';
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${where === '(root)' ? k : `${where}.${k}`}: unknown key`).join('\n  - ');
  }
  return `${where}: ${issue.message}`;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates an already-parsed object. Throws ConfigError naming every bad key. */
export function validateConfig(raw: unknown, file = '<config>'): Config {
  const res = configSchema.safeParse(raw);
  // The check options and score names are validated even when the rest fails, so one run lists every issue.
  const analysis = isTable(raw) && isTable(raw.analysis) ? raw.analysis : {};
  const checks = isTable(analysis.checks) ? analysis.checks : {};
  const checkIssues = [
    ...validateCheckOptions(Object.fromEntries(Object.entries(checks).filter(([, v]) => isTable(v))) as Record<string, Record<string, unknown>>),
    ...validateScoreNames(isTable(analysis.scores) ? analysis.scores : {}),
  ];
  const issues = [...(res.success ? [] : res.error.issues.map(formatIssue)), ...checkIssues];
  if (issues.length || !res.success) throw new ConfigError(file, issues);
  return res.data;
}

export function parseConfigText(text: string, file = '<config>'): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(file, [`line ${err.line}, column ${err.column}: ${err.message.split('\n')[0]}`]);
    }
    throw err;
  }
  return validateConfig(raw, file);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Loads a config file. With `create`, a missing file is written with the defaults first. */
export function loadConfig(file: string, opts: { create?: boolean } = {}): LoadedConfig {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    if (!opts.create) throw new ConfigError(abs, ['file not found']);
    fs.writeFileSync(abs, DEFAULT_CONFIG_TEXT, { flag: 'wx' });
  }
  const config = parseConfigText(fs.readFileSync(abs, 'utf8'), abs);
  const dataDir = path.resolve(path.dirname(abs), config.data_dir);
  return { config: deepFreeze(config), file: abs, dataDir };
}

export function resolveSecret(s: string | { env: string } | undefined): string | undefined {
  if (s === undefined || typeof s === 'string') return s;
  return process.env[s.env];
}
