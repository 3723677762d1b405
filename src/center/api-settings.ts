// GET /api/v1/settings and GET /api/v1/detectors, for admins and auditors: the effective configuration with its
// defaults and descriptions (secrets hidden), and the trend analyzer's detectors with their thresholds and output.
import type { FastifyPluginAsync } from 'fastify';
import { allow } from './auth/access.ts';
import { effectiveSettings } from './settings.ts';
import { detectorsView } from './detectors.ts';
import type { WebDeps } from './server.ts';

export const settingsApi: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const read = { preHandler: allow(deps.config, 'admin', 'auditor') };
  // The config is frozen for the life of the process: built once, on first use.
  let settings: ReturnType<typeof effectiveSettings> | undefined;
  app.get('/settings', read, async () => (settings ??= effectiveSettings(deps.config, { file: deps.configFile, dataDir: deps.dataDir })));
  app.get('/detectors', read, async () => detectorsView(deps.db, deps.config));
};
