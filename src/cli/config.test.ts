// postern config check|show|schema through main(), as the command line calls it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { main } from '../main.ts';

let out: MockInstance<typeof console.log>;
let err: MockInstance<typeof console.error>;
const printed = () => out.mock.calls.map((c) => c.join(' ')).join('\n');
const complained = () => err.mock.calls.map((c) => c.join(' ')).join('\n');

beforeEach(() => {
  out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
});
afterEach(() => vi.restoreAllMocks());

function writeConfig(text: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'postern-cli-')), 'postern.toml');
  fs.writeFileSync(file, text);
  return file;
}

describe('postern config check', () => {
  it('returns 0 for a valid file and prints the effective config, defaults filled in', async () => {
    const file = writeConfig('[gateway]\nlisten = "0.0.0.0:25"\ndomains = ["example.com"]\n[relay.downstream]\nhost = "10.0.0.5"\n');
    expect(await main(['config', 'check', file])).toBe(0);
    const text = printed();
    expect(text).toContain(`# ${file}: valid`);
    expect(text).toContain('listen = "0.0.0.0:25"');
    expect(text).toContain('domains = [ "example.com" ]');
    expect(text).toMatch(/\[relay\.downstream\]\nhost = "10\.0\.0\.5"\nport = 25\nprotocol = "smtp"/);
    // Defaults the file never mentioned:
    expect(text).toContain('max_command_line = 512');
    expect(text).toMatch(/\[analysis\.actions\]\ntag = 5\nquarantine = 8\nreject = 15/);
    expect(complained()).toBe('');
  });

  it('returns 78 for a bad file and names each bad key on stderr', async () => {
    const file = writeConfig('[gateway]\nlistne = "0.0.0.0:25"\nworkers = "two"\n[analysis.checks.headers]\nmax_date_skew_days = 0\n');
    expect(await main(['config', 'check', file])).toBe(78);
    const text = complained();
    expect(text).toContain(`${file}: invalid configuration`);
    expect(text).toContain('gateway.listne: unknown key');
    expect(text).toMatch(/gateway\.workers: .*expected number/);
    expect(printed()).toBe('');
  });

  it('returns 78 for a bad check option', async () => {
    const file = writeConfig('[analysis.checks.headers]\nmax_date_skew_days = 0\n');
    expect(await main(['config', 'check', file])).toBe(78);
    expect(complained()).toContain('analysis.checks.headers.max_date_skew_days: Too small');
  });

  it('returns 78 for a TOML syntax error, with its position', async () => {
    const file = writeConfig('[gateway]\nlisten = "127.0.0.1:25\n');
    expect(await main(['config', 'check', file])).toBe(78);
    expect(complained()).toMatch(/line 2, column \d+:/);
  });

  it('returns 78 for a missing file', async () => {
    expect(await main(['config', 'check', path.join(os.tmpdir(), 'no-such-dir-postern', 'postern.toml')])).toBe(78);
    expect(complained()).toContain('file not found');
  });
});

describe('postern config show and schema', () => {
  it('show prints the effective config of --config', async () => {
    const file = writeConfig('[log]\nlevel = "warn"\n');
    expect(await main(['config', 'show', '--config', file])).toBe(0);
    expect(printed()).toMatch(/\[log\]\nlevel = "warn"/);
  });

  it('show --effective lists every value as a dotted key and marks the defaults', async () => {
    const file = writeConfig('[log]\nlevel = "warn"\n');
    expect(await main(['config', 'show', '--effective', '--config', file])).toBe(0);
    expect(printed()).toMatch(/^log\.level = "warn"$/m);
    expect(printed()).toMatch(/^gateway\.listen = "127\.0\.0\.1:2525"   # default$/m);
    expect(printed()).toMatch(/^analysis\.actions\.reject = 15   # default$/m);
  });

  it('schema prints a JSON Schema that knows every section', async () => {
    expect(await main(['config', 'schema'])).toBe(0);
    const schema = JSON.parse(printed()) as { properties: Record<string, unknown>; additionalProperties: boolean };
    expect(Object.keys(schema.properties)).toEqual(['data_dir', 'gateway', 'relay', 'analysis', 'policy', 'quarantine', 'web', 'store', 'matrix', 'trends', 'outbound', 'monitor', 'similarity', 'outbreak', 'log']);
    expect(schema.additionalProperties).toBe(false);
  });

  it('an unknown subcommand is a usage error', async () => {
    expect(await main(['config', 'frobnicate'])).toBe(64);
    expect(complained()).toContain('usage: postern config');
  });
});
