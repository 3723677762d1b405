import { describe, expect, it } from 'vitest';
import { validateConfig } from '../config/load.ts';
import { describeSecret, effectiveSettings, hideUrlPassword } from './settings.ts';

describe('settings', () => {
  it('says what a secret is, never what it holds', () => {
    expect(describeSecret('hunter2')).toBe('(set)');
    expect(describeSecret({ env: 'POSTERN_X' })).toBe('(from env POSTERN_X)');
    expect(describeSecret(undefined)).toBe('(not set)');
    expect(describeSecret('')).toBe('(not set)');
  });

  it("hides a URL's password and leaves the rest", () => {
    expect(hideUrlPassword('postgres://postern:s3cr@t@db.example:5432/postern?sslmode=require')).toBe('postgres://postern:(set)@db.example:5432/postern?sslmode=require');
    expect(hideUrlPassword('redis://:pw@127.0.0.1:6379')).toBe('redis://:(set)@127.0.0.1:6379');
    expect(hideUrlPassword('postgres://postern@db.example/postern')).toBe('postgres://postern@db.example/postern');
    expect(hideUrlPassword('https://mail-gw.example.com/a:b@c')).toBe('https://mail-gw.example.com/a:b@c');
    expect(hideUrlPassword('sqlite:/var/lib/postern.db')).toBe('sqlite:/var/lib/postern.db');
  });

  it('walks a table absent by default with its own defaults', () => {
    const s = effectiveSettings(validateConfig({ relay: { downstream: { host: '192.0.2.5', port: 2525 } }, store: { url: 'postgres://p:pw-xyz@db/p' } }));
    const keys = new Map(s.sections.flatMap((x) => x.keys.map((k) => [k.key, k])));
    expect(keys.get('relay.downstream.host')).toMatchObject({ value: '192.0.2.5', default: null, changed: true });
    expect(keys.get('relay.downstream.port')).toMatchObject({ value: 2525, default: 25, changed: true });
    expect(keys.get('relay.downstream.protocol')).toMatchObject({ value: 'smtp', default: 'smtp', changed: false });
    expect(keys.get('relay.smarthost')).toMatchObject({ value: null, changed: false });
    expect(JSON.stringify(s)).not.toContain('pw-xyz');
    expect(s.config_file).toBeNull();
  });
});
