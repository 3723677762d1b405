// The effective configuration for the center's Settings page: every key of the schema with its value, its default,
// whether it was changed and its description, grouped by section, with every secret replaced by what it is.
// The same comparison as `postern config show --effective`; values come from the loaded config, never the file.
import type { z } from 'zod';
import { configSchema, type Config } from '../config/schema.ts';
import { validateConfig } from '../config/load.ts';
import { typeName } from '../config/docs.ts';

export interface SettingKey {
  /** Dotted path, as written in postern.toml ("trends.harvest.ip_unknown"). */
  key: string;
  /** The effective value (secrets as "(set)", "(from env NAME)" or "(not set)"); null when unset. */
  value: unknown;
  /** The default; null when the key is unset by default. */
  default: unknown;
  changed: boolean;
  description: string;
  type: string;
  secret: boolean;
}

export interface SettingsSection {
  /** The top-level key ("gateway"); "" for the top-level keys themselves (data_dir). */
  name: string;
  keys: SettingKey[];
}

export interface Settings {
  config_file: string | null;
  data_dir: string | null;
  sections: SettingsSection[];
}

type Def = Record<string, unknown> & { type: string };
const defOf = (s: z.ZodType): Def => (s as unknown as { def: Def }).def;

interface Unwrapped {
  inner: z.ZodType;
  description: string;
  defaultValue: unknown;
}

/** Strips default/prefault/optional/pipe wrappers, keeping the outermost description and default. */
function unwrap(schema: z.ZodType): Unwrapped {
  let s = schema;
  let description: string | undefined;
  let defaultValue: unknown;
  for (;;) {
    const desc = s.meta()?.description;
    if (description === undefined && typeof desc === 'string') description = desc;
    const d = defOf(s);
    if (d.type === 'default' || d.type === 'prefault') {
      if (defaultValue === undefined) defaultValue = d.defaultValue;
      s = d.innerType as z.ZodType;
    } else if (d.type === 'optional' || d.type === 'nullable') s = d.innerType as z.ZodType;
    else if (d.type === 'pipe') s = d.in as z.ZodType;
    else break;
  }
  return { inner: s, description: description ?? '', defaultValue };
}

/** The schema's `secret`: a string or { env = "NAME" }. */
function isSecret(s: z.ZodType): boolean {
  const d = defOf(s);
  if (d.type !== 'union') return false;
  const kinds = (d.options as z.ZodType[]).map((o) => {
    const od = defOf(o);
    return od.type === 'object' ? Object.keys(od.shape as object).join(',') : od.type;
  });
  return kinds.length === 2 && kinds.includes('string') && kinds.includes('env');
}

/** Plain strings that are keys all the same (not of the `secret` type: a rotation list). */
const SECRET_LISTS = new Set(['quarantine.link_secret_previous']);

/** What a secret is, never what it holds. */
export function describeSecret(v: unknown): string {
  if (v && typeof v === 'object' && typeof (v as { env?: unknown }).env === 'string') return `(from env ${(v as { env: string }).env})`;
  return typeof v === 'string' && v !== '' ? '(set)' : '(not set)';
}

/** A URL's password (postgres://user:PASS@host, redis://:PASS@host) replaced by "(set)". */
export function hideUrlPassword(s: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(s);
  if (!m) return s;
  const at = m[2].lastIndexOf('@');
  if (at < 0) return s;
  const colon = m[2].slice(0, at).indexOf(':');
  if (colon < 0) return s;
  return `${m[1]}${m[2].slice(0, colon)}:(set)${m[2].slice(at)}${m[3]}`;
}

/** A value with every secret inside it (tables in arrays, records) replaced. */
function hide(schema: z.ZodType, v: unknown): unknown {
  const s = unwrap(schema).inner;
  if (isSecret(s)) return describeSecret(v);
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return hideUrlPassword(v);
  const d = defOf(s);
  if (Array.isArray(v)) return d.type === 'array' ? v.map((x) => hide(d.element as z.ZodType, x)) : v;
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const sub = d.type === 'object' ? (d.shape as Record<string, z.ZodType>)[k] : d.type === 'record' ? (d.valueType as z.ZodType) : undefined;
      out[k] = sub ? hide(sub, x) : typeof x === 'string' ? hideUrlPassword(x) : x;
    }
    return out;
  }
  return v;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
const child = (o: unknown, k: string): unknown => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined);

let defaults: unknown;

/** Every key under `schema`, in declaration order; an absent optional table ([relay.downstream]) is one key. */
function walk(schema: z.ZodType, value: unknown, dflt: unknown, path: string, out: SettingKey[]): void {
  const u = unwrap(schema);
  const d = defOf(u.inner);
  const base = { key: path, description: u.description, type: typeName(schema) };
  if (isSecret(u.inner)) {
    out.push({ ...base, value: describeSecret(value), default: describeSecret(dflt), changed: value !== undefined, secret: true });
    return;
  }
  if (d.type === 'object') {
    if (value === undefined || value === null) {
      out.push({ ...base, value: null, default: null, changed: false, secret: false });
      return;
    }
    for (const [k, c] of Object.entries(d.shape as Record<string, z.ZodType>)) {
      // Inside a table that is absent by default ([relay.downstream]), each key's default is the schema's own.
      const own = defOf(unwrap(c).inner).type === 'object' ? undefined : unwrap(c).defaultValue;
      walk(c, child(value, k), dflt === undefined ? own : child(dflt, k), path ? `${path}.${k}` : k, out);
    }
    return;
  }
  if (SECRET_LISTS.has(path)) {
    const list = Array.isArray(value) ? value : [];
    out.push({ ...base, value: list.map(() => '(set)'), default: [], changed: list.length > 0, secret: true });
    return;
  }
  out.push({ ...base, value: hide(schema, value), default: hide(schema, dflt), changed: !same(value, dflt), secret: false });
}

/** The effective configuration, section by section, secrets hidden. */
export function effectiveSettings(config: Config, where: { file?: string; dataDir?: string } = {}): Settings {
  defaults ??= JSON.parse(JSON.stringify(validateConfig({})));
  const plain = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  const shape = defOf(configSchema).shape as Record<string, z.ZodType>;
  const top: SettingKey[] = [];
  const sections: SettingsSection[] = [];
  for (const [name, s] of Object.entries(shape)) {
    const keys: SettingKey[] = [];
    walk(s, plain[name], child(defaults, name), name, keys);
    if (defOf(unwrap(s).inner).type === 'object') sections.push({ name, keys });
    else top.push(...keys);
  }
  return { config_file: where.file ?? null, data_dir: where.dataDir ?? null, sections: [{ name: '', keys: top }, ...sections] };
}
