// postern config check|show|schema
import { stringify } from 'smol-toml';
import { z } from 'zod';
import { configSchema } from '../config/schema.ts';
import { args, load } from './common.ts';

function stripUndefined(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

export async function runConfig(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = args(rest, {});
  switch (sub) {
    case 'check': {
      const loaded = load(positionals[0] ?? values.config);
      console.log(`# ${loaded.file}: valid\n`);
      console.log(stringify(stripUndefined(loaded.config) as Record<string, unknown>));
      return 0;
    }
    case 'show': {
      const loaded = load(values.config);
      console.log(stringify(stripUndefined(loaded.config) as Record<string, unknown>));
      return 0;
    }
    case 'schema':
      console.log(JSON.stringify(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }), null, 2));
      return 0;
    default:
      console.error('usage: postern config check [FILE] | show [--config FILE] | schema');
      return 64;
  }
}
