// Detector settings changed at run time: the thresholds and switches of the trend analyzer's detectors
// ([trends.*]) and the outbreak rule ([outbreak]'s rule keys), set through the center or `postern detectors` and
// kept in the store (table settings_overrides). A value set there beats the file's until it is reset. Every process
// that reads them (the analyzer, each gateway's in-line outbreak check, the center) keeps the effective config in a
// LiveSettings and re-reads the table every few seconds, and at once when a change is announced on the policy bus.
//
// The loaded config is frozen and passed everywhere; only these keys change, so only their readers ask a
// LiveSettings for the current config instead of holding the loaded one.
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';
import type { DB } from '../store/schema.ts';

/** The outbreak section's keys that belong to the rule and its policy; the rest configure the gateways and retro/. */
export const OUTBREAK_RULE_KEYS: ReadonlySet<string> = new Set([
  'suspicious_score',
  'min_members',
  'min_sources',
  'min_recipients',
  'min_suspicious_share',
  'burst_min',
  'action',
  'policy_ttl_h',
]);

export class OverrideError extends Error {
  override name = 'OverrideError';
}

type Def = Record<string, unknown> & { type: string };
const defOf = (s: z.ZodType): Def => (s as unknown as { def: Def }).def;

/** The object schema under default/prefault wrappers. */
function objectOf(s: z.ZodType): Record<string, z.ZodType> | undefined {
  let cur = s;
  for (;;) {
    const d = defOf(cur);
    if (d.type === 'default' || d.type === 'prefault' || d.type === 'optional') cur = d.innerType as z.ZodType;
    else if (d.type === 'object') return d.shape as Record<string, z.ZodType>;
    else return undefined;
  }
}

const TOP = objectOf(configSchema) as Record<string, z.ZodType>;
const TRENDS = objectOf(TOP.trends) as Record<string, z.ZodType>;

/** The detectors whose settings may change at run time: every table under [trends] with an `enabled` key, and outbreak. */
export const DETECTOR_SECTIONS: readonly { name: string; section: string; schema: z.ZodType }[] = [
  ...Object.entries(TRENDS)
    .filter(([, s]) => objectOf(s)?.enabled !== undefined)
    .map(([name, schema]) => ({ name, section: `trends.${name}`, schema })),
  { name: 'outbreak', section: 'outbreak', schema: TOP.outbreak },
];

/** Whether a dotted key may be set at run time, and the detector it belongs to. */
export function editableKey(key: string): { detector: string; section: string; field: string } | undefined {
  const dot = key.lastIndexOf('.');
  const section = key.slice(0, dot);
  const field = key.slice(dot + 1);
  const d = DETECTOR_SECTIONS.find((x) => x.section === section);
  if (!d || !field) return undefined;
  const shape = objectOf(d.schema) as Record<string, z.ZodType>;
  if (!Object.hasOwn(shape, field) || objectOf(shape[field])) return undefined;
  // The outbreak switch also turns the gateways' fingerprints on or off: that takes a restart, from the file.
  if (d.name === 'outbreak' && !OUTBREAK_RULE_KEYS.has(field)) return undefined;
  return { detector: d.name, section, field };
}

/** Every key a detector has that may be set at run time ("trends.harvest.ip_unknown", ...). */
export function editableKeys(detector: string): string[] {
  const d = DETECTOR_SECTIONS.find((x) => x.name === detector);
  if (!d) return [];
  return Object.keys(objectOf(d.schema) as object)
    .map((f) => `${d.section}.${f}`)
    .filter((k) => editableKey(k));
}

const sectionOf = (config: Config, section: string): Record<string, unknown> =>
  section.split('.').reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, config as unknown as Record<string, unknown>);

/**
 * The config with these values in place of the file's, checked by the schema of each section they touch (its ranges
 * and its rules across keys). Throws OverrideError naming the first bad key.
 */
export function withOverrides(base: Config, values: ReadonlyMap<string, unknown>): Config {
  if (!values.size) return base;
  const bySection = new Map<string, Record<string, unknown>>();
  for (const [key, value] of values) {
    const e = editableKey(key);
    if (!e) throw new OverrideError(`${key}: not a detector setting that can be changed at run time`);
    const s = bySection.get(e.section) ?? { ...sectionOf(base, e.section) };
    s[e.field] = value;
    bySection.set(e.section, s);
  }
  const out = structuredClone(base) as unknown as Record<string, Record<string, unknown>>;
  for (const [section, value] of bySection) {
    const d = DETECTOR_SECTIONS.find((x) => x.section === section) as (typeof DETECTOR_SECTIONS)[number];
    const res = d.schema.safeParse(value);
    if (!res.success) {
      const issue = res.error.issues[0];
      throw new OverrideError(`${[section, ...issue.path.map(String)].join('.')}: ${issue.message}`);
    }
    const parts = section.split('.');
    const parent = parts.slice(0, -1).reduce((o, k) => o[k] as unknown as Record<string, Record<string, unknown>>, out);
    parent[parts[parts.length - 1]] = res.data as Record<string, unknown>;
  }
  return out as unknown as Config;
}

export interface Override {
  key: string;
  value: unknown;
  set_by: string;
  set_at: number;
}

export async function listOverrides(db: Kysely<DB>): Promise<Override[]> {
  const rows = await db.selectFrom('settings_overrides').selectAll().orderBy('key').execute();
  return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as unknown, set_by: r.set_by, set_at: Number(r.set_at) }));
}

/**
 * Sets (a value) or resets (null) keys of one detector at once, after checking them together with what is already
 * set, against `base` (the file's config). Returns the keys whose stored value changed, with the old and new values.
 */
export async function setOverrides(
  db: Kysely<DB>,
  base: Config,
  changes: ReadonlyMap<string, unknown | null>,
  by: string,
  now = Date.now(),
): Promise<{ key: string; from: unknown; to: unknown }[]> {
  const current = new Map((await listOverrides(db)).map((o) => [o.key, o.value]));
  const next = new Map(current);
  for (const [k, v] of changes) {
    if (!editableKey(k)) throw new OverrideError(`${k}: not a detector setting that can be changed at run time`);
    if (v === null) next.delete(k);
    else next.set(k, v);
  }
  const effective = withOverrides(base, next);
  const changed: { key: string; from: unknown; to: unknown }[] = [];
  await db.transaction().execute(async (tx) => {
    for (const [k, v] of changes) {
      const from = current.has(k) ? current.get(k) : undefined;
      if (v === null) {
        if (!current.has(k)) continue;
        await tx.deleteFrom('settings_overrides').where('key', '=', k).execute();
        changed.push({ key: k, from, to: null });
        continue;
      }
      // What the schema made of it (e.g. a number for a number field), as every process will read it.
      const e = editableKey(k) as NonNullable<ReturnType<typeof editableKey>>;
      const value = sectionOf(effective, e.section)[e.field];
      if (current.has(k) && JSON.stringify(from) === JSON.stringify(value)) continue;
      const row = { key: k, value: JSON.stringify(value), set_by: by, set_at: now };
      await tx
        .insertInto('settings_overrides')
        .values(row)
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: row.value, set_by: by, set_at: now }))
        .execute();
      changed.push({ key: k, from: from ?? null, to: value });
    }
  });
  return changed;
}

/** A value typed on a command line ("40", "0.7", "true", "block") as the JSON value it means. */
export function parseCliValue(text: string): unknown {
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

/** The effective config of this process: the file's, with the store's overrides as last read. */
export class LiveSettings {
  private current: Config;
  private stored: Override[] = [];
  private signature = '';
  private timer: NodeJS.Timeout | null = null;
  private loading: Promise<boolean> | null = null;

  constructor(
    private readonly db: Kysely<DB>,
    readonly base: Config,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.current = base;
  }

  get config(): Config {
    return this.current;
  }

  /** The overrides as last read. */
  get overrides(): readonly Override[] {
    return this.stored;
  }

  /**
   * Re-reads the table; true when the effective config changed. A stored value this version's schema refuses (a
   * downgrade, a hand edit) is left out and reported, never applied.
   */
  load(): Promise<boolean> {
    this.loading ??= this.read().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async read(): Promise<boolean> {
    const rows = await listOverrides(this.db);
    const signature = JSON.stringify(rows);
    if (signature === this.signature) return false;
    this.signature = signature;
    const good = new Map<string, unknown>();
    for (const o of rows) {
      try {
        withOverrides(this.base, new Map([...good, [o.key, o.value]]));
        good.set(o.key, o.value);
      } catch (err) {
        this.onError(new Error(`ignoring the stored setting ${o.key}: ${(err as Error).message}`));
      }
    }
    this.stored = rows.filter((o) => good.has(o.key));
    this.current = withOverrides(this.base, good);
    return true;
  }

  /** Re-reads every `ms`; a failed read keeps the last good config. */
  watch(ms: number): void {
    this.timer = setInterval(() => void this.load().catch((err: Error) => this.onError(err)), ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
