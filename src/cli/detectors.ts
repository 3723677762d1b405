// postern detectors list|set|reset: the trend analyzer's detectors with their switch and thresholds, and changing
// them at run time as the center's Policies page does (table settings_overrides, config/overrides.ts). A running
// Postern follows within seconds: the analyzer re-reads the table every 2 s, each gateway every 5 s.
import { args, fmtTime, load, withStore } from './common.ts';
import { table, UsageError, usageFailure } from './policies.ts';
import { cliActor } from './quarantine.ts';
import { EventSink } from '../matrix/sink.ts';
import { silentLogger } from '../core/log.ts';
import { detectorsView } from '../center/detectors.ts';
import { DETECTOR_SECTIONS, editableKey, LiveSettings, OverrideError, parseCliValue, setOverrides } from '../config/overrides.ts';

const USAGE = `usage: postern detectors list [--json]
       postern detectors set <detector> <key>=<value>...
       postern detectors reset <detector> [<key>...]
Detectors: ${DETECTOR_SECTIONS.map((d) => d.name).join(', ')}. Keys are those of the detector's section in the
config ("ip_unknown", "enabled"; for outbreak the rule's keys). A value set here beats the config file's until it
is reset; reset without keys resets every key of the detector.`;

const OPTIONS = { config: { type: 'string' }, json: { type: 'boolean' } } as const;

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

export async function runDetectors(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = args(rest, OPTIONS);
    const loaded = load(values.config);
    if (sub === 'list') {
      if (positionals.length) throw new UsageError(`detectors list takes no argument, not "${positionals.join(' ')}"`, true);
      return await withStore(loaded, async (s) => {
        const live = new LiveSettings(s.db, loaded.config, (err) => console.error(`postern: ${err.message}`));
        await live.load();
        const view = await detectorsView(s.db, live.config, loaded.config, live.overrides);
        if (values.json) {
          console.log(JSON.stringify(view, null, 2));
          return 0;
        }
        if (!view.analyzer_enabled) console.log('the trend analyzer is off (trends.enabled = false): no detector runs\n');
        for (const d of view.items) {
          const by = d.switch_override ? ` (set by ${d.switch_override.set_by} ${fmtTime(d.switch_override.set_at)})` : '';
          console.log(`${d.name}: ${d.enabled ? 'on' : 'off'}${by}, ${d.policies_24h} policies in 24 h\n  ${d.summary}`);
          const rows = d.thresholds.map((t) => [
            `  ${t.key.slice(d.switch.length - 'enabled'.length)}`,
            show(t.value),
            t.override ? `set by ${t.override.set_by} ${fmtTime(t.override.set_at)} (file: ${show(t.file_value)})` : t.changed ? 'file' : 'default',
          ]);
          if (rows.length) console.log(table([['  KEY', 'VALUE', 'FROM'], ...rows]));
          console.log('');
        }
        return 0;
      });
    }
    if (sub !== 'set' && sub !== 'reset') throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed', true);
    const [name, ...pairs] = positionals;
    const d = DETECTOR_SECTIONS.find((x) => x.name === name);
    if (!d) throw new UsageError(name ? `no detector "${name}"` : `detectors ${sub} needs a detector`, true);
    const changes = new Map<string, unknown>();
    if (sub === 'set') {
      if (!pairs.length) throw new UsageError('detectors set needs at least one key=value', true);
      for (const p of pairs) {
        const eq = p.indexOf('=');
        if (eq <= 0) throw new UsageError(`"${p}" is not key=value`, true);
        changes.set(`${d.section}.${p.slice(0, eq)}`, parseCliValue(p.slice(eq + 1)));
      }
    }
    return await withStore(loaded, async (s) => {
      if (sub === 'reset' && !pairs.length) {
        const live = new LiveSettings(s.db, loaded.config);
        await live.load();
        for (const o of live.overrides) if (o.key.startsWith(`${d.section}.`)) changes.set(o.key, null);
        if (!changes.size) {
          console.log(`${name}: nothing was changed at run time`);
          return 0;
        }
      } else if (sub === 'reset') for (const k of pairs) changes.set(`${d.section}.${k}`, null);
      for (const k of changes.keys()) if (!editableKey(k)) throw new UsageError(`${k} cannot be changed at run time${name === 'outbreak' ? ' (only the outbreak rule\'s keys can)' : ''}`);
      const by = cliActor();
      let changed: Awaited<ReturnType<typeof setOverrides>>;
      try {
        changed = await setOverrides(s.db, loaded.config, changes, by);
      } catch (err) {
        if (err instanceof OverrideError) throw new UsageError(err.message);
        throw err;
      }
      const sink = new EventSink(s, silentLogger);
      for (const c of changed) sink.emit('settings.changed', { data: { ...c, detector: name, by } });
      await sink.flush();
      if (!changed.length) console.log(`${name}: no change`);
      for (const c of changed) console.log(`${c.key}: ${c.from === null ? 'file' : show(c.from)} -> ${c.to === null ? 'file' : show(c.to)}`);
      if (changed.length) console.log('a running Postern follows within 5 s');
      return 0;
    });
  } catch (err) {
    return usageFailure(err, USAGE);
  }
}
