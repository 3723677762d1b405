// GET /api/v1/settings and GET /api/v1/detectors, for admins and auditors: the effective configuration with its
// defaults and descriptions (secrets hidden), and the trend analyzer's detectors with their thresholds and output.
// PATCH /api/v1/detectors/:name, for admins: changes a detector's switch and thresholds at run time (or resets them
// to the file's), checked by the config schema, recorded as settings.changed events and announced on the policy bus.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { actorOf, allow } from './auth/access.ts';
import { effectiveSettings } from './settings.ts';
import { detectorsView } from './detectors.ts';
import { parse } from './api-query.ts';
import { DETECTOR_SECTIONS, editableKey, OverrideError, setOverrides } from '../config/overrides.ts';
import type { WebDeps } from './server.ts';
import { WebError } from './web-error.ts';

export const DetectorParams = z.strictObject({ name: z.string().min(1).max(64).describe('The detector, e.g. harvest or outbreak.') });
export const DetectorPatch = z.strictObject({
  settings: z
    .record(z.string().min(1).max(64), z.union([z.number(), z.boolean(), z.string().max(64), z.null()]))
    .refine((r) => Object.keys(r).length > 0, 'no settings given')
    .refine((r) => Object.keys(r).length <= 32, 'at most 32 settings at once')
    .describe('Keys of the detector\'s section ("ip_unknown", "enabled") with their new values; null resets a key to the config file\'s value.'),
});

export const settingsApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };
  const write = { preHandler: allow(deps.config, 'admin') };
  const live = () => deps.settings?.config ?? deps.config;
  // The file's config is frozen for the life of the process; the view is rebuilt when the center's changes are.
  let settings: { config: unknown; view: ReturnType<typeof effectiveSettings> } | undefined;
  app.get('/settings', read, async () => {
    if (settings?.config !== live()) settings = { config: live(), view: effectiveSettings(live(), { file: deps.configFile, dataDir: deps.dataDir }) };
    return settings.view;
  });
  const view = () => detectorsView(deps.db, live(), deps.config, deps.settings?.overrides ?? []);
  app.get('/detectors', read, async () => view());

  app.patch('/detectors/:name', write, async (req) => {
    const { name } = parse(DetectorParams, req.params, 'path');
    const d = DETECTOR_SECTIONS.find((x) => x.name === name);
    if (!d) throw new WebError(404, 'not_found', `no detector ${name}; detectors: ${DETECTOR_SECTIONS.map((x) => x.name).join(', ')}`);
    if (!deps.settings) throw new WebError(409, 'read_only', 'this server cannot change detector settings at run time');
    const body = parse(DetectorPatch, req.body, 'body');
    const changes = new Map<string, unknown>();
    for (const [field, value] of Object.entries(body.settings)) {
      const key = `${d.section}.${field}`;
      if (!editableKey(key)) {
        throw new WebError(400, 'bad_request', `body settings.${field}: ${key} cannot be changed at run time${name === 'outbreak' ? ' (only the outbreak rule\'s keys can; the rest take a restart)' : ''}`);
      }
      changes.set(key, value);
    }
    const by = actorOf(req.principal!);
    let changed: Awaited<ReturnType<typeof setOverrides>>;
    try {
      changed = await setOverrides(deps.db, deps.config, changes, by);
    } catch (err) {
      if (err instanceof OverrideError) throw new WebError(400, 'bad_request', `body settings: ${err.message}`);
      throw err;
    }
    for (const c of changed) deps.emit('settings.changed', { data: { ...c, detector: name, by } });
    if (changed.length) {
      // This process at once; the others (the analyzer, each gateway) when the bus tells them, or within seconds.
      await deps.settings.load();
      deps.announce?.({ op: 'settings', id: name });
    }
    const all = await view();
    return { detector: all.items.find((x) => x.name === name), changed };
  });
};
