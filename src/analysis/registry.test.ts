// The check registry: unique names, unique SCREAMING_SNAKE symbols, every symbol documented, and every symbol
// covered by a fixture case that expects it and one that must not fire it (STYLE §2, registry tests).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKS } from './checks/index.ts';
import { loadCases, type LoadedCase } from './checks/cases.ts';

const symbolsDoc = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/symbols.md'), 'utf8');

function allCases(): LoadedCase[] {
  return CHECKS.flatMap((c) => loadCases(c));
}

describe('check registry', () => {
  it('has unique, kebab-case check names', () => {
    const names = CHECKS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/);
  });

  it('has each check in its own folder, named after it', () => {
    for (const c of CHECKS) expect(fs.existsSync(path.resolve(import.meta.dirname, 'checks', c.name, `${c.name}.ts`))).toBe(true);
  });

  it('declares each check for a phase the gateway runs', () => {
    // gateway/server.ts runs 'connect' before the greeting, 'helo' at HELO/EHLO and 'rcpt' at each accepted RCPT;
    // gateway/phases/data.ts runs 'mail' and 'data' at the end of DATA.
    // Nothing runs 'connect' or 'rcpt' yet, so a check declared for them would silently never run.
    for (const c of CHECKS) expect(['connect', 'helo', 'rcpt', 'mail', 'data'], `check ${c.name}`).toContain(c.phase);
  });

  it('has symbol names unique across checks and in SCREAMING_SNAKE', () => {
    const seen = new Map<string, string>();
    for (const c of CHECKS) {
      expect(Object.keys(c.symbols).length, `check ${c.name} declares no symbols`).toBeGreaterThan(0);
      for (const s of Object.keys(c.symbols)) {
        expect(s).toMatch(/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/);
        expect(seen.get(s), `${s} is declared by ${seen.get(s)} and ${c.name}`).toBeUndefined();
        seen.set(s, c.name);
      }
    }
    // The runner reports a crashed check under this name; no check may declare it.
    expect(seen.has('CHECK_FAILED')).toBe(false);
  });

  it('gives every symbol a finite score and a one-line description', () => {
    for (const c of CHECKS) {
      for (const [s, spec] of Object.entries(c.symbols)) {
        expect(Number.isFinite(spec.score), s).toBe(true);
        expect(spec.description.length, s).toBeGreaterThan(0);
        expect(spec.description, s).not.toMatch(/[\r\n]/);
      }
    }
  });

  it('documents every symbol in docs/symbols.md', () => {
    for (const c of CHECKS) {
      for (const s of Object.keys(c.symbols)) {
        expect(symbolsDoc, `${s} is missing from docs/symbols.md: run \`npm run docs\``).toContain(`| \`${s}\` | \`${c.name}\` |`);
      }
    }
  });

  it('has, for every symbol, a fixture case that expects it and one that must not fire it', () => {
    const cases = allCases();
    const missing: string[] = [];
    for (const c of CHECKS) {
      const mine = cases.filter((k) => k.check === c);
      for (const s of Object.keys(c.symbols)) {
        if (!mine.some((k) => k.expect.includes(s))) missing.push(`${c.name}: no case expects ${s}`);
        if (!mine.some((k) => k.expect_absent.includes(s))) missing.push(`${c.name}: no case rules out ${s}`);
      }
    }
    expect(missing, `add cases to src/analysis/checks/<name>/cases/cases.json`).toEqual([]);
  });
});
