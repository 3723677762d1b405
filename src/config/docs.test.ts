// The generated reference pages under docs/ must match what the code generates today.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cell, GENERATED_DOCS, tomlValue, typeName, walkKeys } from './docs.ts';
import { configSchema } from './schema.ts';
import { CHECKS } from '../analysis/checks/index.ts';
import { REPLY } from '../core/reply.ts';
import { EVENT_TYPES } from '../core/events.ts';
import { ERRORS } from '../core/errors.ts';
import type { Check } from '../analysis/check.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('generated docs are current', () => {
  for (const [file, generate] of Object.entries(GENERATED_DOCS)) {
    it(file, () => {
      const abs = path.join(root, file);
      const committed = fs.existsSync(abs) ? fs.readFileSync(abs, 'utf8') : '(missing)';
      expect(committed, `${file} is stale: run \`npm run docs\` and commit the result`).toBe(generate());
    });
  }
});

describe('docs/config.md', () => {
  const keys = walkKeys(configSchema).map((r) => r.key);

  it('lists every key of every section, nested tables and array entries included', () => {
    for (const k of ['data_dir', 'gateway.listen', 'gateway.greet_pause.unknown_ms', 'gateway.tls.cert', 'relay.downstream.host',
      'relay.smarthost.port', 'analysis.actions.reject', 'analysis.scores', 'policy.rules[].redirect_to', 'store.password', 'log.level']) {
      expect(keys).toContain(k);
    }
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('lists every option of every check under analysis.checks.<name>', () => {
    const doc = GENERATED_DOCS['docs/config.md']();
    for (const c of CHECKS) {
      expect(doc).toContain(`### ${c.name}\n`);
      if (!c.options) continue;
      for (const r of walkKeys(c.options, `analysis.checks.${c.name}`)) expect(doc).toContain(`| \`${r.key}\` |`);
    }
    expect(doc).toContain('`analysis.checks.headers.max_date_skew_days` | number (≥ 1) | `7` |');
  });

  it('renders types, defaults and required keys as a TOML reader needs them', () => {
    const rows = new Map(walkKeys(configSchema).map((r) => [r.key, r]));
    expect(rows.get('gateway.workers')).toMatchObject({ type: 'integer (1–64)', default: '1' });
    expect(rows.get('gateway.domains')).toMatchObject({ type: 'array of string', default: '["localhost"]' });
    expect(rows.get('gateway.bare_newline')?.type).toBe('"normalize" | "reject"');
    expect(rows.get('relay.downstream')).toMatchObject({ type: 'table', default: '' });
    expect(rows.get('relay.downstream.host')?.default).toBe('required');
    expect(rows.get('relay.downstream.port')?.default).toBe('25');
    expect(rows.get('store.password')).toMatchObject({ type: 'string | { env = string }', default: '' });
    expect(rows.get('analysis.scores')?.type).toBe('table (string → number | "reject" | "quarantine")');
    expect(typeName(z.array(z.string()).min(1).max(3))).toBe('array of string, 1–3 items');
    expect(tomlValue({ a: 1, b: ['x'] })).toBe('{ a = 1, b = ["x"] }');
  });

  it('escapes what markdown would swallow in a table cell', () => {
    expect(cell('a | b <name> *@domain')).toBe('a \\| b \\<name> \\*@domain');
  });
});

describe('catalogue pages list every entry', () => {
  it('symbols.md', () => {
    const doc = GENERATED_DOCS['docs/symbols.md']();
    for (const c of CHECKS) for (const s of Object.keys(c.symbols)) expect(doc).toContain(`| \`${s}\` | \`${c.name}\` |`);
  });
  it('replies.md', () => {
    const doc = GENERATED_DOCS['docs/replies.md']();
    for (const [name, r] of Object.entries(REPLY)) expect(doc).toContain(`| \`${name}\` | ${r.code} | ${r.enhanced} |`);
  });
  it('events.md', () => {
    const doc = GENERATED_DOCS['docs/events.md']();
    for (const [type, e] of Object.entries(EVENT_TYPES)) expect(doc).toContain(`| \`${type}\` | ${e.level} |`);
  });
  it('errors.md, in both directions', () => {
    const doc = GENERATED_DOCS['docs/errors.md']();
    const listed = [...doc.matchAll(/^\| `(PST_E_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(ERRORS).sort());
  });
});

describe('docs/architecture.md', () => {
  it('its "adding a check" example is a working check', async () => {
    const doc = fs.readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');
    const block = /^ {3}```ts\n([\s\S]*?)\n {3}```$/m.exec(doc);
    expect(block, 'the ts example under "Adding a check"').not.toBeNull();
    const source = block![1].replace(/^ {3}/gm, '');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'postern-doc-')), 'example-check.ts');
    const src = (p: string) => JSON.stringify(path.join(root, 'src', p));
    fs.writeFileSync(file, `import { z } from 'zod';\nimport { defineCheck } from ${src('analysis/check.ts')};\n${source}\n`);
    const { subject } = (await import(/* @vite-ignore */ file)) as { subject: Check };
    const { Runner } = await import('../analysis/runner.ts');
    const { ScoreTable } = await import('../analysis/scoring.ts');
    const { buildMessageView } = await import('../analysis/message-view.ts');
    const { silentLogger } = await import('../core/log.ts');
    const runner = new Runner({
      checks: [subject],
      options: new Map([[subject.name, subject.options!.parse({})]]),
      scores: new ScoreTable([subject], {}),
      timeoutMs: 1000,
      log: silentLogger,
    });
    const session = { ip: '192.0.2.1', ourHostname: 'mx.example.com', ourDomains: ['example.com'], trusted: false, tls: false };
    const run = async (raw: string) =>
      (await runner.run('data', { session, message: await buildMessageView(Buffer.from(raw.replace(/\n/g, '\r\n'))) })).hits.map((h) => h.name);
    expect(await run('From: a@example.net\nTo: b@example.com\n\nhello\n')).toEqual(['SUBJECT_MISSING']);
    expect(await run(`From: a@example.net\nSubject: ${'x'.repeat(200)}\n\nhello\n`)).toEqual(['SUBJECT_LONG']);
    expect(await run('From: a@example.net\nSubject: hello\n\nhello\n')).toEqual([]);
  });
});
