// The Policies page's Detectors panel: each trend detector, whether it runs, its thresholds (changed ones marked,
// each described on hover) and the policies it wrote in the last 24 hours.
import { get, qs } from '../api.ts';
import { Section, Show, useLoad } from '../components.tsx';
import type { Detectors } from '../types.ts';
import { tomlish } from './settings.tsx';

export function DetectorsPanel() {
  const st = useLoad(() => get<Detectors>('/api/v1/detectors'), []);
  return (
    <Section title="Detectors">
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
                      <span class={`badge ${x.enabled ? 'b-allow' : ''}`}>{x.enabled ? 'on' : 'off'}</span>
                    </td>
                    <td>
                      <ul class="plain thresholds">
                        {x.thresholds.map((t) => {
                          const name = t.key.slice(t.key.lastIndexOf('.') + 1);
                          return (
                            <li key={t.key} title={t.description} class={t.changed ? 'changed' : ''} data-key={t.key}>
                              <span class="addr">
                                {name} = {tomlish(t.value)}
                              </span>
                              {t.changed && <span class="muted"> (default {tomlish(t.default)})</span>}
                            </li>
                          );
                        })}
                      </ul>
                      <a href={`/ui/settings${qs({ q: x.switch.replace(/\.enabled$/, '.') })}`}>in Settings</a>
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
