// Runs every check on its fixture cases (checks/<name>/cases/cases.json) and asserts the symbols that must fire and
// the symbols that must not. The case format and its defaults are in cases.ts.
import { describe, expect, it } from 'vitest';
import { CHECKS } from './index.ts';
import { caseInput, loadCases, takesDns, type LoadedCase } from './cases.ts';
import { Runner } from '../runner.ts';
import { ScoreTable } from '../scoring.ts';
import { silentLogger } from '../../core/log.ts';
import { caseServices } from './case-services.ts';

async function runCase(c: LoadedCase) {
  const { input, now, dnsServers } = await caseInput(c);
  // The checks this one runs after (`after`) run too, with their defaults and the case's DNS server.
  const before = CHECKS.filter((k) => c.check.after?.includes(k.name));
  const options = new Map<string, unknown>(c.check.options ? [[c.check.name, c.check.options.parse(c.options ?? {})]] : []);
  for (const k of before) if (k.options) options.set(k.name, k.options.parse(dnsServers && takesDns(k) ? { dns_servers: dnsServers } : {}));
  const runner = new Runner({
    checks: [...before, c.check],
    options,
    scores: new ScoreTable(CHECKS, {}),
    timeoutMs: 2_000,
    log: silentLogger,
    now: () => now,
    services: await caseServices(),
  });
  return runner.run(c.check.phase, input, { msg_id: `case:${c.title}` });
}

for (const check of CHECKS) {
  describe(`check ${check.name} (${check.phase} phase)`, () => {
    let cases: LoadedCase[] = [];
    let loadError: unknown;
    try {
      cases = loadCases(check);
    } catch (err) {
      loadError = err;
    }
    it('cases.json is valid and every .eml in cases/ is used', () => {
      if (loadError) throw loadError;
    });
    for (const c of cases) {
      it(c.title, async () => {
        const res = await runCase(c);
        const fired = res.hits.filter((h) => h.check === check.name).map((h) => h.name);
        const failed = res.hits.find((h) => h.name === 'CHECK_FAILED');
        expect(failed, `the check failed: ${failed?.detail?.join(': ')}`).toBeUndefined();
        expect(res.mustDefer).toBe(false);
        for (const s of c.expect) expect(fired, `${s} must fire`).toContain(s);
        for (const s of c.expect_absent) expect(fired, `${s} must not fire`).not.toContain(s);
        for (const h of res.hits.filter((x) => !check.after?.includes(x.check))) {
          expect(h.check).toBe(check.name);
          expect(h.score).toBe(check.symbols[h.name].score * h.weight);
        }
      });
    }
  });
}
