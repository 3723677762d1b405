// postern config check|show|schema
import { stringify } from 'smol-toml';
import { z } from 'zod';
import { configSchema } from '../config/schema.ts';
import { validateConfig } from '../config/load.ts';
import { args, load } from './common.ts';

function stripUndefined(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

function tomlValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    return `{ ${Object.entries(v).map(([k, x]) => `${k} = ${tomlValue(x)}`).join(', ')} }`;
  }
  return JSON.stringify(v);
}

/** Every effective value as a dotted TOML key, each marked when it is the default. */
export function effectiveLines(config: unknown): string[] {
  const defaults = stripUndefined(validateConfig({}));
  const out: string[] = [];
  const walk = (v: unknown, d: unknown, pathParts: string[]) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) {
      for (const [k, x] of Object.entries(v)) walk(x, (d as Record<string, unknown> | undefined)?.[k], [...pathParts, k]);
      return;
    }
    const isDefault = JSON.stringify(v) === JSON.stringify(d);
    out.push(`${pathParts.join('.')} = ${tomlValue(v)}${isDefault ? '   # default' : ''}`);
  };
  walk(stripUndefined(config), defaults, []);
  return out;
}

export async function runConfig(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = args(rest, { effective: { type: 'boolean' } });
  switch (sub) {
    case 'check': {
      const loaded = load(positionals[0] ?? values.config);
      console.log(`# ${loaded.file}: valid\n`);
      console.log(stringify(stripUndefined(loaded.config) as Record<string, unknown>));
      return 0;
    }
    case 'show': {
      const loaded = load(values.config);
      if (values.effective) console.log(`# ${loaded.file}\n${effectiveLines(loaded.config).join('\n')}`);
      else console.log(stringify(stripUndefined(loaded.config) as Record<string, unknown>));
      return 0;
    }
    case 'schema':
      console.log(JSON.stringify(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }), null, 2));
      return 0;
    default:
      console.error('usage: postern config check [FILE] | show [--effective] [--config FILE] | schema');
      return 64;
  }
}
