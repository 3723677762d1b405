// Validates analysis.checks.<name> against each check's own options schema and applies its defaults.
import { CHECKS } from './checks/index.ts';
import { GATEWAY_SYMBOLS } from './gateway-symbols.ts';

export function validateCheckOptions(raw: Record<string, Record<string, unknown>>): string[] {
  const issues: string[] = [];
  for (const name of Object.keys(raw)) {
    const check = CHECKS.find((c) => c.name === name);
    if (!check) issues.push(`analysis.checks.${name}: unknown check`);
    else if (!check.options) issues.push(`analysis.checks.${name}: this check has no options`);
    else {
      const r = check.options.safeParse(raw[name]);
      if (!r.success) {
        for (const i of r.error.issues) {
          const keys = i.code === 'unrecognized_keys' ? i.keys.map((k) => `${k}: unknown key`) : [`${i.path.join('.')}: ${i.message}`];
          for (const k of keys) issues.push(`analysis.checks.${name}.${k}`.replace(/\.:/, ':'));
        }
      }
    }
  }
  return issues;
}

/** Every name under analysis.scores must be a symbol some check emits: a typo must not silently do nothing. */
export function validateScoreNames(scores: Record<string, unknown>): string[] {
  const known = new Set([...CHECKS.flatMap((c) => Object.keys(c.symbols)), ...Object.keys(GATEWAY_SYMBOLS)]);
  return Object.keys(scores)
    .filter((n) => !known.has(n))
    .map((n) => `analysis.scores.${n}: unknown symbol (see docs/symbols.md)`);
}

export function checkOptions(raw: Record<string, Record<string, unknown>>): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const c of CHECKS) if (c.options) m.set(c.name, c.options.parse(raw[c.name] ?? {}));
  return m;
}
