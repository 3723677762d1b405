// The Policies page's Detectors panel: each trend detector, whether it runs, its thresholds (changed ones marked,
// each described on hover, those set here with who set them) and the policies it wrote in the last 24 hours. An
// admin edits a detector's switch and thresholds in place; a value set here beats the config file's until reset.
import { useState } from 'preact/hooks';
import { enc, get, patch, qs } from '../api.ts';
import { Section, Show, fmtTime, useLoad } from '../components.tsx';
import { FlashNote, why } from '../list.tsx';
import type { DetectorInfo, DetectorSetting, Detectors } from '../types.ts';
import { tomlish } from './settings.tsx';

const field = (key: string) => key.slice(key.lastIndexOf('.') + 1);

/** What a text box holds, as the value its key's type wants; undefined when it is not one. */
function typed(t: DetectorSetting, text: string): unknown {
  if (/^(number|integer)/.test(t.type)) {
    const n = Number(text.trim());
    return text.trim() === '' || !Number.isFinite(n) ? undefined : n;
  }
  return text;
}

/** The type's choices when it is an enumeration (`"quarantine" | "block"`). */
function choices(type: string): string[] | undefined {
  const parts = type.split(' | ');
  return parts.length > 1 && parts.every((p) => /^"[^"]*"$/.test(p)) ? parts.map((p) => p.slice(1, -1)) : undefined;
}

function Editor({ d, done }: { d: DetectorInfo; done: (text: string, ok: boolean) => void }) {
  const editable = d.thresholds.filter((t) => t.editable);
  const [on, setOn] = useState(d.enabled);
  const [texts, setTexts] = useState<Record<string, string>>(Object.fromEntries(editable.map((t) => [t.key, String(t.value)])));
  const [busy, setBusy] = useState(false);
  const send = async (settings: Record<string, unknown>) => {
    setBusy(true);
    try {
      const r = await patch<{ changed: { key: string }[] }>(`/api/v1/detectors/${enc(d.name)}`, { settings });
      done(r.changed.length ? `${d.name}: changed ${r.changed.map((c) => field(c.key)).join(', ')}; in force within seconds` : `${d.name}: nothing changed`, true);
    } catch (err) {
      done(why(err), false);
    } finally {
      setBusy(false);
    }
  };
  const save = (e: Event) => {
    e.preventDefault();
    const settings: Record<string, unknown> = {};
    if (d.switch_editable && on !== d.enabled) settings.enabled = on;
    for (const t of editable) {
      const v = typed(t, texts[t.key] ?? '');
      if (v === undefined) return done(`${field(t.key)}: "${texts[t.key]}" is not a number`, false);
      if (JSON.stringify(v) !== JSON.stringify(t.value)) settings[field(t.key)] = v;
    }
    if (!Object.keys(settings).length) return done(`${d.name}: nothing changed`, true);
    void send(settings);
  };
  const overridden = [...(d.switch_override ? ['enabled'] : []), ...d.thresholds.filter((t) => t.override).map((t) => field(t.key))];
  return (
    <form class="detector-edit" data-edit={d.name} onSubmit={save}>
      {d.switch_editable && (
        <label>
          <input type="checkbox" name="enabled" checked={on} onChange={(e) => setOn((e.target as HTMLInputElement).checked)} /> runs
        </label>
      )}
      {editable.map((t) => {
        const opts = choices(t.type);
        const set = (e: Event) => setTexts({ ...texts, [t.key]: (e.target as HTMLInputElement).value });
        return (
          <label key={t.key} title={`${t.description} (${t.type}; file: ${tomlish(t.file_value)})`}>
            {field(t.key)}{' '}
            {opts ? (
              <select name={field(t.key)} value={texts[t.key]} onChange={set}>
                {opts.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            ) : (
              <input name={field(t.key)} size={7} value={texts[t.key]} onInput={set} />
            )}
          </label>
        );
      })}
      <button type="submit" disabled={busy}>
        Save
      </button>
      {overridden.length > 0 && (
        <button type="button" disabled={busy} onClick={() => void send(Object.fromEntries(overridden.map((k) => [k, null])))}>
          Reset to file
        </button>
      )}
      <button type="button" onClick={() => done('', true)}>
        Cancel
      </button>
    </form>
  );
}

export function DetectorsPanel({ admin = false }: { admin?: boolean }) {
  const [tick, setTick] = useState(0);
  const [editing, setEditing] = useState<string | null>(null);
  const [flash, setFlash] = useState<{ ok: boolean; text: string } | null>(null);
  const st = useLoad(() => get<Detectors>('/api/v1/detectors'), [tick]);
  return (
    <Section title="Detectors">
      <FlashNote flash={flash?.text ? flash : null} />
      <Show state={st} what="detectors">
        {(d) => (
          <>
            {!d.analyzer_enabled && <p class="note unavailable">The trend analyzer is off (trends.enabled = false): no detector runs in this process.</p>}
            <table class="detectors">
              <thead>
                <tr>
                  <th>Detector</th>
                  <th>Runs</th>
                  <th>Thresholds</th>
                  <th class="num">Policies, 24 h</th>
                </tr>
              </thead>
              <tbody>
                {d.items.map((x) => (
                  <tr key={x.name} data-detector={x.name}>
                    <td>
                      <b>{x.name}</b>
                      <div class="muted">{x.summary}</div>
                    </td>
                    <td>
                      <span class={`badge ${x.enabled ? 'b-allow' : ''}`} data-enabled={String(x.enabled)}>
                        {x.enabled ? 'on' : 'off'}
                      </span>
                      {x.switch_override && <div class="muted">set by {x.switch_override.set_by}</div>}
                    </td>
                    <td>
                      {editing === x.name ? (
                        <Editor
                          d={x}
                          done={(text, ok) => {
                            setFlash({ ok, text });
                            if (ok) {
                              setEditing(null);
                              setTick(tick + 1);
                            }
                          }}
                        />
                      ) : (
                        <>
                          <ul class="plain thresholds">
                            {x.thresholds.map((t) => (
                              <li key={t.key} title={t.description} class={t.changed || t.override ? 'changed' : ''} data-key={t.key}>
                                <span class="addr">
                                  {field(t.key)} = <span data-value>{tomlish(t.value)}</span>
                                </span>
                                {t.override ? (
                                  <span class="muted" data-override>
                                    {' '}
                                    (set by {t.override.set_by} {fmtTime(t.override.set_at)}; file {tomlish(t.file_value)})
                                  </span>
                                ) : (
                                  t.changed && <span class="muted"> (default {tomlish(t.default)})</span>
                                )}
                              </li>
                            ))}
                          </ul>
                          <a href={`/ui/settings${qs({ q: x.switch.replace(/\.enabled$/, '.') })}`}>in Settings</a>
                          {admin && (x.switch_editable || x.thresholds.some((t) => t.editable)) && (
                            <>
                              {' · '}
                              <button type="button" class="link" onClick={() => (setFlash(null), setEditing(x.name))}>
                                Edit
                              </button>
                            </>
                          )}
                        </>
                      )}
                    </td>
                    <td class="num count" title={`policies with source analyzer:${x.name} created in the last 24 hours`}>
                      {x.policies_24h}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Show>
    </Section>
  );
}
