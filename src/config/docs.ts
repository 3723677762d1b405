// Generates docs/config.md, symbols.md, replies.md, events.md and errors.md from the code that defines them.
// Pure functions returning markdown; scripts/gen-docs.ts writes the files and docs.test.ts checks they are current.
import type { z } from 'zod';
import { configSchema } from './schema.ts';
import { DEFAULT_CONFIG_TEXT } from './load.ts';
import { CHECKS } from '../analysis/checks/index.ts';
import { GATEWAY_SYMBOLS } from '../analysis/gateway-symbols.ts';
import { GROUP_CAPS } from '../analysis/scoring.ts';
import { REPLY } from '../core/reply.ts';
import { EVENT_TYPES } from '../core/events.ts';
import { ERRORS } from '../core/errors.ts';

/** One row of docs/config.md. */
export interface KeyDoc {
  key: string;
  type: string;
  /** TOML-style default, 'required' or '' (unset by default). */
  default: string;
  description: string;
}

const HEADER = (source: string) =>
  `<!-- Generated from ${source} by \`npm run docs\` (scripts/gen-docs.ts). Do not edit by hand. -->\n`;

/** Escapes text for a markdown table cell: pipes, and the characters that start HTML, emphasis or escapes. */
export function cell(text: string): string {
  return text.replace(/[\\|<*]/g, (c) => `\\${c}`).replace(/\r?\n/g, ' ');
}

/** A code span for a table cell (pipes must still be escaped inside a GFM table). */
const code = (text: string): string => (text === '' ? '' : `\`${text.replace(/\|/g, '\\|')}\``);

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

/** A value as it is written in TOML. */
export function tomlValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v);
    return entries.length ? `{ ${entries.map(([k, x]) => `${k} = ${tomlValue(x)}`).join(', ')} }` : '{}';
  }
  return String(v);
}

// ---------------------------------------------------------------------------------------------------------------
// Walking a zod 4 schema. Only the node kinds the config uses are described; anything else reads as its zod type.

type Node = z.ZodType & { def: Record<string, unknown> & { type: string }; _zod: { def: Record<string, unknown> } };
const defOf = (s: z.ZodType) => (s as Node).def;

interface Unwrapped {
  inner: z.ZodType;
  description?: string;
  hasDefault: boolean;
  defaultValue?: unknown;
  optional: boolean;
}

/** Strips default/prefault/optional wrappers, collecting the outermost description and the default. */
function unwrap(schema: z.ZodType): Unwrapped {
  const u: Unwrapped = { inner: schema, hasDefault: false, optional: false };
  let s = schema;
  for (;;) {
    const desc = s.meta()?.description;
    if (u.description === undefined && typeof desc === 'string') u.description = desc;
    const d = defOf(s);
    if (d.type === 'default' || d.type === 'prefault') {
      if (!u.hasDefault) {
        u.hasDefault = true;
        u.defaultValue = d.defaultValue;
      }
      s = d.innerType as z.ZodType;
    } else if (d.type === 'optional' || d.type === 'nullable') {
      u.optional = true;
      s = d.innerType as z.ZodType;
    } else if (d.type === 'pipe') {
      // A transform (e.g. lower-casing domains): the input side is what the file holds.
      s = d.in as z.ZodType;
    } else break;
  }
  u.inner = s;
  return u;
}

function range(min: number | null | undefined, max: number | null | undefined): string {
  const lo = min !== null && min !== undefined && Number.isFinite(min) && min > Number.MIN_SAFE_INTEGER;
  const hi = max !== null && max !== undefined && Number.isFinite(max) && max < Number.MAX_SAFE_INTEGER;
  if (lo && hi) return ` (${min}–${max})`;
  if (lo) return ` (≥ ${min})`;
  if (hi) return ` (≤ ${max})`;
  return '';
}

function lengthRange(s: z.ZodType, what: string): string {
  const checks = (defOf(s).checks ?? []) as { _zod: { def: { check: string; minimum?: number; maximum?: number } } }[];
  let min: number | undefined;
  let max: number | undefined;
  for (const c of checks) {
    if (c._zod.def.check === 'min_length') min = c._zod.def.minimum;
    if (c._zod.def.check === 'max_length') max = c._zod.def.maximum;
  }
  const n = (k: number) => `${k} ${k === 1 ? what : `${what}s`}`;
  if (min !== undefined && max !== undefined) return `, ${min}–${n(max)}`;
  if (min !== undefined) return `, at least ${n(min)}`;
  if (max !== undefined) return `, at most ${n(max)}`;
  return '';
}

/** A short type for a TOML reader: `integer (1–64)`, `"smtp" | "lmtp"`, `array of string`. */
export function typeName(schema: z.ZodType): string {
  const s = unwrap(schema).inner;
  const d = defOf(s);
  switch (d.type) {
    case 'string':
      return 'string';
    case 'number': {
      const n = s as z.ZodNumber;
      return `${n.isInt ? 'integer' : 'number'}${range(n.minValue, n.maxValue)}`;
    }
    case 'boolean':
      return 'boolean';
    case 'enum':
      return Object.values(d.entries as Record<string, string>)
        .map((v) => JSON.stringify(v))
        .join(' | ');
    case 'literal':
      return (d.values as unknown[]).map((v) => JSON.stringify(v)).join(' | ');
    case 'array': {
      const el = d.element as z.ZodType;
      const elType = defOf(unwrap(el).inner).type === 'object' ? 'tables' : typeName(el);
      return `array of ${elType}${lengthRange(s, elType === 'tables' ? 'entry' : 'item')}`;
    }
    case 'object': {
      const keys = Object.keys(d.shape as object);
      return keys.length ? 'table' : 'table (empty)';
    }
    case 'record': {
      const v = d.valueType as z.ZodType;
      const vt = defOf(unwrap(v).inner).type === 'record' ? 'table' : typeName(v);
      return `table (${typeName(d.keyType as z.ZodType)} → ${vt})`;
    }
    case 'union':
      return (d.options as z.ZodType[]).map((o) => inlineType(o)).join(' | ');
    case 'unknown':
    case 'any':
      return 'any';
    default:
      return d.type;
  }
}

/** A type short enough to sit inside a union: inline tables are spelled out. */
function inlineType(schema: z.ZodType): string {
  const s = unwrap(schema).inner;
  const d = defOf(s);
  if (d.type !== 'object') return typeName(s);
  const fields = Object.entries(d.shape as Record<string, z.ZodType>).map(([k, v]) => `${k} = ${typeName(v)}`);
  return `{ ${fields.join(', ')} }`;
}

function defaultText(u: Unwrapped, parentOptional: boolean): string {
  if (u.hasDefault) {
    if (defOf(u.inner).type === 'object' && u.defaultValue && typeof u.defaultValue === 'object') return '';
    return tomlValue(u.defaultValue);
  }
  if (u.optional) return '';
  return parentOptional ? 'required' : '';
}

/**
 * Every key under `schema`, depth first in declaration order. Objects contribute a row of their own only when they
 * carry a description or are optional (a section that is absent unless written); their keys follow as rows.
 */
export function walkKeys(schema: z.ZodType, prefix = '', parentOptional = false): KeyDoc[] {
  const out: KeyDoc[] = [];
  const d = defOf(unwrap(schema).inner);
  if (d.type !== 'object') return out;
  for (const [name, child] of Object.entries(d.shape as Record<string, z.ZodType>)) {
    const key = prefix ? `${prefix}.${name}` : name;
    const u = unwrap(child);
    const cd = defOf(u.inner);
    if (cd.type === 'object') {
      if (u.description !== undefined || u.optional) {
        out.push({ key, type: 'table', default: u.optional ? '' : defaultText(u, parentOptional), description: u.description ?? '' });
      }
      out.push(...walkKeys(u.inner, key, u.optional || parentOptional));
      continue;
    }
    out.push({ key, type: typeName(child), default: defaultText(u, parentOptional), description: u.description ?? '' });
    if (cd.type === 'array') {
      const el = unwrap(cd.element as z.ZodType).inner;
      if (defOf(el).type === 'object') out.push(...walkKeys(el, `${key}[]`, true));
    }
  }
  return out;
}

function keyTable(rows: readonly KeyDoc[]): string {
  return table(
    ['key', 'type', 'default', 'description'],
    rows.map((r) => [code(r.key), cell(r.type), r.default === 'required' ? '*required*' : code(r.default), cell(r.description)]),
  );
}

/** docs/config.md: every key of postern.toml, section by section, then each check's options. */
export function configDoc(): string {
  const top = defOf(configSchema).shape as Record<string, z.ZodType>;
  const parts: string[] = [
    HEADER('src/config/schema.ts and the option schemas of the checks in src/analysis/checks/'),
    '# Configuration reference\n',
    'Postern reads one TOML file, `postern.toml` (`postern start --config FILE` to use another). Every key is optional',
    'unless marked *required*; an absent key takes the default shown. Keys are snake_case in the file and in the code.',
    'An unknown key is an error that names its dotted path, and so is a value of the wrong type or out of range;',
    '`postern config check FILE` reports every problem at once and exits with status 78.',
    '',
    'Secrets are not written into the file: a value such as `store.password` may be `{ env = "VARIABLE" }`, read from',
    'the environment at start.',
    '',
    'In the tables, `table` is a TOML table (`[section]` or an inline `{ … }`), and `key[].field` is a field of each',
    'entry of an array of tables (`[[key]]`).',
    '',
  ];
  parts.push('## Top level\n', keyTable(walkKeys(configSchema).filter((r) => !r.key.includes('.') && r.type !== 'table')));
  for (const [name, child] of Object.entries(top)) {
    if (defOf(unwrap(child).inner).type !== 'object') continue;
    parts.push(`## [${name}]\n`, keyTable(walkKeys(child, name)));
  }
  parts.push(
    '## Check options: [analysis.checks.\\<name>]\n',
    'Each analysis check may take options of its own under `[analysis.checks.<name>]`. A check name that is not in the',
    'registry, or a section for a check without options, is an error.',
    '',
  );
  for (const c of CHECKS) {
    parts.push(`### ${c.name}\n`);
    if (!c.options) {
      parts.push('No options.\n');
      continue;
    }
    const rows = walkKeys(c.options, `analysis.checks.${c.name}`);
    parts.push(rows.length ? keyTable(rows) : 'No options.\n');
  }
  parts.push(
    '## The file written on first start\n',
    '`postern start` writes this file when the config file does not exist yet:\n',
    '```toml',
    DEFAULT_CONFIG_TEXT.replace(/\n+$/, ''),
    '```',
    '',
  );
  return parts.join('\n');
}

/** docs/symbols.md: every symbol every check can emit. */
export function symbolsDoc(): string {
  const rows: string[][] = [];
  for (const c of CHECKS) {
    for (const [name, spec] of Object.entries(c.symbols)) {
      rows.push([code(name), code(c.name), c.phase, spec.group, `${spec.score}${spec.hold ? ', holds' : ''}`, cell(spec.description)]);
    }
  }
  const gatewayRows = Object.entries(GATEWAY_SYMBOLS).map(([name, spec]) => [code(name), spec.group, `${spec.score}${spec.hold ? ', holds' : ''}`, cell(spec.description)]);
  const caps = Object.entries(GROUP_CAPS).map(([g, cap]) => [g, String(cap)]);
  return [
    HEADER('the check registry, src/analysis/checks/index.ts'),
    '# Analysis symbols\n',
    'A check looks at one aspect of a session or message and emits named symbols; it never picks an action. The',
    "message's score is the sum of its symbols' scores (each multiplied by the weight the check gave the hit), with",
    'each group capped; the thresholds in `[analysis.actions]` turn the score into an action. A symbol\'s score can be',
    'changed in `[analysis.scores]`, e.g. `HELO_BARE_IP = 3`, or set to `"reject"` to refuse every message that has it,',
    'or to `"quarantine"` to hold every message that has it. A symbol marked *holds* holds the message in quarantine',
    'whatever the rest scores, and is never by itself the reason for a refusal: only the score without it can reach',
    'the reject threshold.',
    '',
    `Checks run in this order: ${CHECKS.map((c) => `\`${c.name}\``).join(', ')}. The phase is the SMTP stage whose`,
    'facts the check reads; HELO symbols are computed at HELO/EHLO and added to the score at the end of DATA.',
    '',
    table(['symbol', 'check', 'phase', 'group', 'default score', 'description'], rows),
    '## Symbols the gateway adds\n',
    'These depend on the score of everything else and on the clusters of recent mail (docs/outbreaks.md), so the',
    'gateway adds them at the end of DATA, after the checks; they are scored and overridden like the others.\n',
    table(['symbol', 'group', 'default score', 'description'], gatewayRows),
    '## Group caps\n',
    'The most a group of correlated symbols may add to the score (groups not listed are not capped):\n',
    table(['group', 'max score'], caps),
  ].join('\n');
}

/** docs/replies.md: the SMTP reply catalogue. */
export function repliesDoc(): string {
  const rows = Object.entries(REPLY).map(([name, r]) => [code(name), String(r.code), r.enhanced, code(r.text)]);
  return [
    HEADER('the REPLY catalogue, src/core/reply.ts'),
    '# SMTP replies\n',
    'Every reply Postern gives on its own account. The text is generic on purpose: it never names the mechanism or',
    'the configuration that caused it; the event recorded with the reply (docs/events.md) carries the reason.',
    '4xx replies are temporary (the client retries), 5xx permanent (the sender is told).',
    '',
    table(['name', 'code', 'enhanced', 'text'], rows),
  ].join('\n');
}

/** docs/events.md: the closed event catalogue. */
export function eventsDoc(): string {
  const rows = Object.entries(EVENT_TYPES).map(([type, e]) => [code(type), e.level, cell(e.description)]);
  return [
    HEADER('the EVENT_TYPES catalogue, src/core/events.ts'),
    '# Events\n',
    'Every product event Postern records. Each is written to the store (table `events`: type, time, client address,',
    'connection id, queue id and a JSON `data` object) and logged at the level shown.',
    '',
    table(['type', 'level', 'description'], rows),
  ].join('\n');
}

/** docs/errors.md: the coded internal errors. */
export function errorsDoc(): string {
  const rows = Object.entries(ERRORS).map(([c, text]) => [code(c), cell(text)]);
  return [
    HEADER('the ERRORS catalogue, src/core/errors.ts'),
    '# Internal error codes\n',
    'Errors Postern raises internally carry one of these codes (`PosternError.code`); the message starts with the text',
    'shown and may add detail.',
    '',
    table(['code', 'meaning'], rows),
  ].join('\n');
}

/** Every generated file, by its path relative to the repository root. */
export const GENERATED_DOCS: Readonly<Record<string, () => string>> = {
  'docs/config.md': configDoc,
  'docs/symbols.md': symbolsDoc,
  'docs/replies.md': repliesDoc,
  'docs/events.md': eventsDoc,
  'docs/errors.md': errorsDoc,
};
