// Settings: the effective configuration by section, changed keys marked, secrets only said to be set; a filter
// over keys, values and descriptions. Read-only: the configuration is the file (postern config show --effective).
import { useEffect, useState } from 'preact/hooks';
import { get, qs } from '../api.ts';
import { Empty, Show, useLoad } from '../components.tsx';
import { navigate } from '../router.ts';
import type { SettingKey, Settings as SettingsData } from '../types.ts';

/** A value as written in postern.toml; secrets and unset keys as words. */
export function tomlish(v: unknown, secret = false): string {
  if (v === null || v === undefined) return '(not set)';
  // What the server says of a secret ("(set)", "(from env NAME)") is a word, not a value in quotes.
  if (typeof v === 'string' && (secret || /^\((set|not set|from env [^)]+)\)$/.test(v))) return v;
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => tomlish(x, secret)).join(', ')}]`;
  if (typeof v === 'object') {
    const e = Object.entries(v);
    return e.length ? `{ ${e.map(([k, x]) => `${k} = ${tomlish(x, secret)}`).join(', ')} }` : '{}';
  }
  return String(v);
}

const title = (name: string) => (name ? `[${name}]` : 'Top level');
const keysText = (n: number) => `${n} ${n === 1 ? 'key' : 'keys'}`;

function matches(k: SettingKey, words: string[]): boolean {
  const text = `${k.key} ${tomlish(k.value, k.secret)} ${k.description}`.toLowerCase();
  return words.every((w) => text.includes(w));
}

function KeyRows({ keys }: { keys: SettingKey[] }) {
  return (
    <table class="settings">
      <thead>
        <tr>
          <th>Key</th>
          <th>Value</th>
          <th>Default</th>
          <th>Description</th>
        </tr>
      </thead>
      <tbody>
        {keys.map((k) => (
          <tr key={k.key} data-key={k.key} class={k.changed ? 'changed' : ''}>
            <td class="addr">{k.key}</td>
            <td class={`addr${k.secret ? ' secret' : ''}`}>
              {tomlish(k.value, k.secret)}
              {k.changed && <span class="badge b-changed">changed</span>}
            </td>
            <td class="addr muted">{tomlish(k.default, k.secret)}</td>
            <td>
              {k.description}
              <div class="muted">{k.type}</div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Settings({ q }: { q: string }) {
  const [filter, setFilter] = useState(q);
  const [changedOnly, setChangedOnly] = useState(false);
  const [open, setOpen] = useState<Record<string, boolean>>({});
  const st = useLoad(() => get<SettingsData>('/api/v1/settings'), []);
  useEffect(() => setFilter(q), [q]);

  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const narrowed = words.length > 0 || changedOnly;

  return (
    <div>
      <h1>Settings</h1>
      <Show state={st} what="settings">
        {(s) => {
          const sections = s.sections
            .map((sec) => ({ ...sec, shown: sec.keys.filter((k) => (!changedOnly || k.changed) && matches(k, words)) }))
            .filter((sec) => sec.shown.length > 0);
          const all = (v: boolean) => setOpen(Object.fromEntries(s.sections.map((sec) => [sec.name, v])));
          return (
            <>
              <table class="facts">
                <tbody>
                  <tr>
                    <th>Config file</th>
                    <td class="addr">{s.config_file ?? '—'}</td>
                  </tr>
                  <tr>
                    <th>Data directory</th>
                    <td class="addr">{s.data_dir ?? '—'}</td>
                  </tr>
                </tbody>
              </table>
              <p class="muted">
                The effective configuration of this server: every key with its default; changed keys are marked. Secrets are never shown, only whether
                they are set and from where. Change them in the config file and restart.
              </p>
              <form class="search" onSubmit={(e) => e.preventDefault()}>
                <label>
                  Filter
                  <input
                    name="filter"
                    size={32}
                    value={filter}
                    placeholder="key, value or description"
                    onInput={(e) => {
                      const v = (e.currentTarget as HTMLInputElement).value;
                      setFilter(v);
                      navigate(`/settings${qs({ q: v })}`, true);
                    }}
                  />
                </label>
                <label class="inline">
                  <input type="checkbox" name="changed" checked={changedOnly} onChange={(e) => setChangedOnly((e.currentTarget as HTMLInputElement).checked)} /> Changed keys only
                </label>
                <button type="button" onClick={() => all(true)}>
                  Expand all
                </button>
                <button type="button" onClick={() => all(false)}>
                  Collapse all
                </button>
              </form>
              {sections.length === 0 && <Empty>No key matches.</Empty>}
              {sections.map((sec) => {
                // A filter opens every section it found something in, unless closed by a click; else each opens on one.
                const isOpen = open[sec.name] ?? narrowed;
                const changed = sec.keys.filter((k) => k.changed).length;
                return (
                  <section key={sec.name} class="setting-section" data-section={sec.name}>
                    <h2>
                      <button type="button" class="toggle" aria-expanded={isOpen} onClick={() => setOpen({ ...open, [sec.name]: !isOpen })}>
                        {isOpen ? '▾' : '▸'} {title(sec.name)}
                      </button>
                      <span class="muted">
                        {narrowed ? `${sec.shown.length} of ${keysText(sec.keys.length)}` : keysText(sec.keys.length)}
                        {changed > 0 && `, ${changed} changed`}
                      </span>
                    </h2>
                    {isOpen && <KeyRows keys={sec.shown} />}
                  </section>
                );
              })}
            </>
          );
        }}
      </Show>
    </div>
  );
}
