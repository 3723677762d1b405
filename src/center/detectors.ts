// The trend analyzer's detectors as the center shows them: each one's switch and thresholds from the effective
// config (with their descriptions and defaults, and who changed them in the center), and how many policies it wrote
// lately (policies.source).
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { DB } from '../store/schema.ts';
import { effectiveSettings, type SettingKey } from './settings.ts';
import { editableKey, OUTBREAK_RULE_KEYS, type Override } from '../config/overrides.ts';

/**
 * What each detector of trends/detectors/index.ts looks for. Which detectors there are is read from the schema: every
 * table under [trends] with an `enabled` key, then [outbreak], the order the analyzer runs them in.
 */
const SUMMARIES: Record<string, string> = {
  harvest: 'Directory harvest: many unknown recipients from one address or network; blocks it.',
  flood: 'Flood: a source address or sender domain far above its own baseline; throttles it.',
  reputation: 'Bad source: an address whose recent messages were mostly refused or held; blocks it.',
  backscatter: 'Backscatter: a storm of bounces to one recipient; holds them in quarantine.',
  brute_force: 'Brute force and spraying: failed logins from one address or to one user; blocks the address or protects the user.',
  login_anomaly: 'Login anomaly: a successful login after many failures, or from a network new for the user; raises an alert.',
  outbreak: 'Outbreak: a cluster of similar suspicious messages from many sources; holds or refuses its copies.',
};

/** A threshold as the center shows it: its effective value, and where that comes from. */
export type DetectorSetting = Omit<SettingKey, 'secret'> & {
  /** The config file's value (or the default): what a reset goes back to. */
  file_value: unknown;
  /** Set in the center or with postern detectors: by whom and when; null when the file's value is in force. */
  override: { set_by: string; set_at: number } | null;
  /** Whether it can be changed at run time (the outbreak switch takes a restart). */
  editable: boolean;
};

export interface DetectorInfo {
  name: string;
  summary: string;
  /** The config key of its switch, e.g. "trends.harvest.enabled". */
  switch: string;
  enabled: boolean;
  /** Whether the switch can be changed at run time; who changed it, if it was. */
  switch_editable: boolean;
  switch_override: { set_by: string; set_at: number } | null;
  /** Its thresholds: every key of its section but the switch. */
  thresholds: DetectorSetting[];
  /** Policies it wrote within the last 24 hours (policies.source = "analyzer:NAME"), lifted ones not counted. */
  policies_24h: number;
}

export interface DetectorsView {
  /** trends.enabled: whether the analyzer runs at all under postern start. */
  analyzer_enabled: boolean;
  items: DetectorInfo[];
}

const DAY_MS = 24 * 3_600_000;

/**
 * `config` is the effective one (the file's with the center's changes), `base` the file's, `overrides` the changes
 * as this process last read them.
 */
export async function detectorsView(
  db: Kysely<DB>,
  config: Config,
  base: Config = config,
  overrides: readonly Override[] = [],
  now = Date.now(),
): Promise<DetectorsView> {
  const rows = await db
    .selectFrom('policies')
    .select((eb) => ['source', eb.fn.countAll<string | number>().as('n')])
    .where('source', 'like', 'analyzer:%')
    .where('created_at', '>=', now - DAY_MS)
    .groupBy('source')
    .execute();
  const counts = new Map(rows.map((r) => [r.source, Number(r.n)]));
  const keys = effectiveSettings(config).sections.flatMap((s) => s.keys);
  // Without changes made at run time the effective config is the file's: no second walk of the schema.
  const fileKeys = base === config ? keys : effectiveSettings(base).sections.flatMap((s) => s.keys);
  const fileValues = new Map(fileKeys.map((k) => [k.key, k.value]));
  const set = new Map(overrides.map((o) => [o.key, { set_by: o.set_by, set_at: o.set_at }]));
  const found = keys.flatMap((k) => {
    const m = /^trends\.([a-z_]+)\.enabled$/.exec(k.key);
    return m ? [{ name: m[1], section: `trends.${m[1]}` }] : [];
  });
  return {
    analyzer_enabled: config.trends.enabled,
    items: [...found, { name: 'outbreak', section: 'outbreak' }].map((d) => {
      const mine = keys.filter((k) => k.key.startsWith(`${d.section}.`) && !k.key.slice(d.section.length + 1).includes('.'));
      const sw = mine.find((k) => k.key === `${d.section}.enabled`);
      const thresholds = mine
        .filter((k) => k !== sw && (d.name !== 'outbreak' || OUTBREAK_RULE_KEYS.has(k.key.slice(d.section.length + 1))))
        .map(({ secret: _, ...k }): DetectorSetting => ({ ...k, file_value: fileValues.get(k.key) ?? null, override: set.get(k.key) ?? null, editable: Boolean(editableKey(k.key)) }));
      const swKey = `${d.section}.enabled`;
      return {
        name: d.name,
        summary: SUMMARIES[d.name] ?? '',
        switch: swKey,
        enabled: sw?.value === true,
        switch_editable: Boolean(editableKey(swKey)),
        switch_override: set.get(swKey) ?? null,
        thresholds,
        policies_24h: counts.get(`analyzer:${d.name}`) ?? 0,
      };
    }),
  };
}
