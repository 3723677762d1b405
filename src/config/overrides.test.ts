// Detector settings changed at run time, on a real store: which keys may change, values checked by the config
// schema (ranges and the section's rules), set and reset in the table, and a LiveSettings in another "process"
// (a second instance on the same store) following them, keeping the file's config for what was never changed.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateConfig } from './load.ts';
import { editableKey, editableKeys, LiveSettings, listOverrides, OverrideError, parseCliValue, setOverrides, withOverrides } from './overrides.ts';
import type { StoreDb } from '../store/db.ts';
import { openTestStore } from '../../test/harness/postern.ts';

const base = validateConfig({ trends: { harvest: { ip_unknown: 7 } }, outbreak: { min_sources: 4 } });

describe('which keys change at run time', () => {
  it('takes every key of a trend detector and the outbreak rule, nothing else', () => {
    expect(editableKey('trends.harvest.ip_unknown')).toEqual({ detector: 'harvest', section: 'trends.harvest', field: 'ip_unknown' });
    expect(editableKey('trends.brute_force.enabled')?.detector).toBe('brute_force');
    expect(editableKey('outbreak.min_sources')?.detector).toBe('outbreak');
    for (const k of ['outbreak.enabled', 'outbreak.hold_s', 'outbreak.pullback.host', 'trends.enabled', 'trends.poll_ms', 'gateway.listen', 'trends.harvest', 'trends.harvest.nope', 'web.api_token', 'trends.harvest.constructor', 'trends.harvest.__proto__', 'trends.harvest.toString']) {
      expect(editableKey(k), k).toBeUndefined();
    }
    expect(editableKeys('harvest')).toContain('trends.harvest.slow_window_s');
    expect(editableKeys('outbreak').sort()).toEqual(
      ['action', 'burst_min', 'min_members', 'min_recipients', 'min_sources', 'min_suspicious_share', 'policy_ttl_h', 'suspicious_score'].map((k) => `outbreak.${k}`),
    );
  });
});

describe('withOverrides', () => {
  it('puts the values in place, leaving the file config and the rest untouched', () => {
    const c = withOverrides(base, new Map<string, unknown>([['trends.harvest.ip_unknown', 3], ['outbreak.action', 'block']]));
    expect(c.trends.harvest.ip_unknown).toBe(3);
    expect(c.trends.harvest.net_unknown).toBe(base.trends.harvest.net_unknown);
    expect(c.outbreak.action).toBe('block');
    expect(c.outbreak.min_sources).toBe(4);
    expect(base.trends.harvest.ip_unknown).toBe(7);
    expect(c.gateway).toEqual(base.gateway);
  });

  it('refuses what the schema refuses, naming the key', () => {
    const bad: [string, unknown, RegExp][] = [
      ['trends.harvest.ip_unknown', 0, /trends\.harvest\.ip_unknown: .*>=\s*1/],
      ['trends.harvest.ip_ratio', 1.5, /trends\.harvest\.ip_ratio/],
      ['trends.harvest.ip_unknown', 'many', /trends\.harvest\.ip_unknown/],
      ['trends.harvest.ip_unknown', 2.5, /trends\.harvest\.ip_unknown/],
      ['outbreak.action', 'explode', /outbreak\.action/],
      ['trends.flood.enabled', 'yes', /trends\.flood\.enabled/],
      ['outbreak.pullback.host', 'x', /not a detector setting/],
    ];
    for (const [k, v, msg] of bad) expect(() => withOverrides(base, new Map([[k, v]])), `${k}=${String(v)}`).toThrow(msg);
    expect(() => withOverrides(base, new Map([['gateway.listen', '0.0.0.0:25']]))).toThrow(OverrideError);
  });

  it('reads command-line values as the JSON they mean', () => {
    expect(parseCliValue('40')).toBe(40);
    expect(parseCliValue('0.75')).toBe(0.75);
    expect(parseCliValue('false')).toBe(false);
    expect(parseCliValue('block')).toBe('block');
  });
});

describe('stored overrides', () => {
  let store: StoreDb;
  let close: () => Promise<void>;
  beforeEach(async () => ({ store, close } = await openTestStore()));
  afterEach(() => close());

  it('sets, changes and resets values; another instance follows; a bad batch writes nothing', async () => {
    const other = new LiveSettings(store.db, base);
    expect(await other.load()).toBe(true);
    expect(other.config.trends.harvest.ip_unknown).toBe(7);

    const first = await setOverrides(store.db, base, new Map<string, unknown>([['trends.harvest.ip_unknown', 3], ['trends.flood.enabled', false]]), 'admin:ann', 1000);
    expect(first).toEqual([
      { key: 'trends.harvest.ip_unknown', from: null, to: 3 },
      { key: 'trends.flood.enabled', from: null, to: false },
    ]);
    expect(await other.load()).toBe(true);
    expect(other.config.trends.harvest.ip_unknown).toBe(3);
    expect(other.config.trends.flood.enabled).toBe(false);
    expect(other.overrides.map((o) => [o.key, o.set_by, o.set_at])).toEqual([
      ['trends.flood.enabled', 'admin:ann', 1000],
      ['trends.harvest.ip_unknown', 'admin:ann', 1000],
    ]);
    // Nothing new: not changed.
    expect(await other.load()).toBe(false);
    // The same value again changes nothing.
    expect(await setOverrides(store.db, base, new Map([['trends.harvest.ip_unknown', 3]]), 'admin:bob')).toEqual([]);

    // One bad value refuses the whole batch.
    await expect(setOverrides(store.db, base, new Map<string, unknown>([['trends.harvest.ip_unknown', 4], ['trends.harvest.ip_ratio', 2]]), 'admin:ann')).rejects.toThrow(
      /ip_ratio/,
    );
    expect((await listOverrides(store.db)).find((o) => o.key === 'trends.harvest.ip_unknown')?.value).toBe(3);

    const reset = await setOverrides(store.db, base, new Map<string, unknown>([['trends.harvest.ip_unknown', null], ['trends.harvest.window_s', null]]), 'cli:root');
    expect(reset).toEqual([{ key: 'trends.harvest.ip_unknown', from: 3, to: null }]);
    await other.load();
    expect(other.config.trends.harvest.ip_unknown).toBe(7);
    expect(other.config.trends.flood.enabled).toBe(false);
  });

  it('leaves out a stored value this version refuses, and says so', async () => {
    await store.db.insertInto('settings_overrides').values([
      { key: 'trends.harvest.ip_unknown', value: '-5', set_by: 'hand', set_at: 1 },
      { key: 'gateway.listen', value: '"0.0.0.0:25"', set_by: 'hand', set_at: 1 },
      { key: 'trends.harvest.net_unknown', value: '9', set_by: 'admin:ann', set_at: 2 },
    ]).execute();
    const errors: string[] = [];
    const live = new LiveSettings(store.db, base, (e) => errors.push(e.message));
    await live.load();
    expect(live.config.trends.harvest.ip_unknown).toBe(7);
    expect(live.config.trends.harvest.net_unknown).toBe(9);
    expect(live.overrides.map((o) => o.key)).toEqual(['trends.harvest.net_unknown']);
    expect(errors).toHaveLength(2);
    expect(errors.join('\n')).toMatch(/trends\.harvest\.ip_unknown/);
    expect(errors.join('\n')).toMatch(/gateway\.listen/);
  });
});
