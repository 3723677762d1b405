// Loading postern.toml: defaults, the default file, and errors that name the key and say what is wrong.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CONFIG_TEXT, loadConfig, parseConfigText } from './load.ts';
import { configSchema } from './schema.ts';

/** The issues a text produces; fails the test if it is valid. */
function issuesOf(text: string): readonly string[] {
  try {
    parseConfigText(text, 'test.toml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error(`expected the config to be refused:\n${text}`);
}

describe('defaults', () => {
  it('an empty file is a complete config with every default', () => {
    const c = parseConfigText('');
    expect(c).toEqual(configSchema.parse({}));
    expect(c.data_dir).toBe('./data');
    expect(c.gateway.listen).toBe('127.0.0.1:2525');
    expect(c.gateway.domains).toEqual(['localhost']);
    expect(c.gateway.greet_pause.unknown_ms).toBe(300);
    expect(c.gateway.max_command_line).toBe(512);
    expect(c.relay.downstream).toBeUndefined();
    expect(c.relay.retry_schedule_s).toEqual([60, 300, 900, 1800, 3600]);
    expect(c.analysis.actions).toEqual({ tag: 5, quarantine: 8, reject: 15 });
    expect(c.analysis.checks).toEqual({});
    expect(c.policy.rules).toEqual([]);
    expect(c.log.level).toBe('info');
  });

  it('DEFAULT_CONFIG_TEXT, the file written on first start, parses to the defaults', () => {
    expect(parseConfigText(DEFAULT_CONFIG_TEXT)).toEqual(parseConfigText(''));
  });

  it('values given replace defaults, nested tables and check options included', () => {
    const c = parseConfigText(`
[gateway]
domains = ["Example.COM"]
[gateway.greet_pause]
unknown_ms = 0
[relay.downstream]
host = "10.0.0.5"
protocol = "lmtp"
[analysis.checks.headers]
max_date_skew_days = 2
[[policy.rules]]
recipient = "*@example.com"
score = -2
`);
    expect(c.gateway.domains).toEqual(['example.com']);
    expect(c.gateway.greet_pause).toEqual({ trusted_ms: 0, known_good_ms: 0, unknown_ms: 0, suspicious_ms: 3000 });
    expect(c.relay.downstream).toMatchObject({ host: '10.0.0.5', port: 25, protocol: 'lmtp', tls: 'starttls' });
    expect(c.analysis.checks.headers).toEqual({ max_date_skew_days: 2 });
    expect(c.policy.rules).toEqual([{ recipient: '*@example.com', sender: '*', score: -2 }]);
  });
});

describe('errors name the dotted key and the reason', () => {
  it('an unknown key', () => {
    expect(issuesOf('[gateway]\nlistne = "0.0.0.0:25"\n')).toEqual(['gateway.listne: unknown key']);
    expect(issuesOf('lsiten = 1\n')).toEqual(['lsiten: unknown key']);
    expect(issuesOf('[gateway.greet_pause]\nunknown = 5\n')).toEqual(['gateway.greet_pause.unknown: unknown key']);
  });

  it('a value of the wrong type or out of range', () => {
    const issues = issuesOf('[gateway]\nworkers = "two"\nmax_recipients = 0\n');
    expect(issues).toHaveLength(2);
    expect(issues[0]).toMatch(/^gateway\.workers: .*expected number, received string/);
    expect(issues[1]).toMatch(/^gateway\.max_recipients: Too small: .*>=1/);
    expect(issuesOf('[gateway]\nlisten = "everywhere"\n')[0]).toMatch(/^gateway\.listen: expected "host:port"/);
    expect(issuesOf('[gateway]\nbare_newline = "strip"\n')[0]).toMatch(/^gateway\.bare_newline: .*"normalize"\|"reject"/);
  });

  it('a value inside an array names its index', () => {
    expect(issuesOf('[gateway]\ndomains = ["example.com", "bad domain"]\n')[0]).toMatch(/^gateway\.domains\.1: expected a domain name/);
  });

  it('a required key of an optional table', () => {
    expect(issuesOf('[relay.downstream]\nport = 24\n')[0]).toMatch(/^relay\.downstream\.host: .*expected string/);
  });

  it('every problem at once', () => {
    const issues = issuesOf('data_dir = 5\n[gateway]\nlistne = 1\nworkers = 0\n[log]\nlevel = "loud"\n');
    expect(issues.map((i) => i.split(':')[0]).sort()).toEqual(['data_dir', 'gateway.listne', 'gateway.workers', 'log.level']);
  });

  it('check options and score names are listed beside the other problems', () => {
    const issues = issuesOf('data_dir = 5\n[analysis.checks.headers]\nmax_skew = 3\n[analysis.scores]\nNO_SUCH_SYMBOL = 2\n');
    expect(issues).toEqual([
      'data_dir: Invalid input: expected string, received number',
      'analysis.checks.headers.max_skew: unknown key',
      'analysis.scores.NO_SUCH_SYMBOL: unknown symbol (see docs/symbols.md)',
    ]);
  });

  it('a bad check option names analysis.checks.<name>.<option>', () => {
    expect(issuesOf('[analysis.checks.headers]\nmax_date_skew_days = 0\n')).toEqual([
      'analysis.checks.headers.max_date_skew_days: Too small: expected number to be >=1',
    ]);
    const issues = issuesOf('[analysis.checks.headers]\nmax_date_skew_days = "a week"\nmax_skew = 3\n');
    expect(issues).toContain('analysis.checks.headers.max_skew: unknown key');
    expect(issues.some((i) => /^analysis\.checks\.headers\.max_date_skew_days: .*expected number/.test(i))).toBe(true);
  });

  it('an unknown check name, and options for a check that has none', () => {
    expect(issuesOf('[analysis.checks.spf]\nenabled = true\n')).toEqual(['analysis.checks.spf: unknown check']);
    expect(issuesOf('[analysis.checks.helo]\nstrict = true\n')).toEqual(['analysis.checks.helo: this check has no options']);
  });

  it('a TOML syntax error reports its line and column', () => {
    const issues = issuesOf('data_dir = "./data"\n\n[gateway\nlisten = "127.0.0.1:25"\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^line 3, column \d+: /);
    expect(issuesOf('[gateway]\nworkers = = 2\n')[0]).toMatch(/^line 2, column 11: /);
  });

  it('the error message starts with the file and lists each issue', () => {
    try {
      parseConfigText('[gateway]\nlistne = 1\n', '/etc/postern.toml');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe('/etc/postern.toml: invalid configuration\n  - gateway.listne: unknown key');
    }
  });
});

describe('loadConfig', () => {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'postern-config-'));

  it('resolves data_dir against the file and freezes the result', () => {
    const dir = tmp();
    const file = path.join(dir, 'postern.toml');
    fs.writeFileSync(file, 'data_dir = "state"\n[gateway]\ndomains = ["example.com"]\n');
    const loaded = loadConfig(file);
    expect(loaded.file).toBe(file);
    expect(loaded.dataDir).toBe(path.join(dir, 'state'));
    expect(Object.isFrozen(loaded.config.gateway.domains)).toBe(true);
    expect(() => (loaded.config.gateway.domains as string[]).push('evil.example')).toThrow(TypeError);
  });

  it('a missing file is an error unless asked to create it with the defaults', () => {
    const file = path.join(tmp(), 'postern.toml');
    expect(() => loadConfig(file)).toThrow(/file not found/);
    const loaded = loadConfig(file, { create: true });
    expect(fs.readFileSync(file, 'utf8')).toBe(DEFAULT_CONFIG_TEXT);
    expect(loaded.config.gateway.hostname).toBe('postern.localhost');
  });
});
