// The detectors the analyzer runs, in order. A later detector (the outbreak detector of the similarity engine) plugs
// in by being added here or passed to the Analyzer as an extra.
import type { Config } from '../../config/schema.ts';
import type { Detector } from '../detector.ts';
import { harvest } from './harvest.ts';
import { floodDetector } from './flood.ts';
import { reputation } from './reputation.ts';
import { backscatter } from './backscatter.ts';
import { bruteForce } from './brute-force.ts';
import { OutbreakDetector } from './outbreak.ts';
import { loginAnomaly } from './login-anomaly.ts';

/** Whether a detector is switched on in this config ([trends.NAME] enabled, or [outbreak] enabled). */
export function isEnabled(name: string, config: Config): boolean {
  if (name === 'outbreak') return config.outbreak.enabled;
  const section = (config.trends as unknown as Record<string, { enabled?: unknown } | undefined>)[name];
  return section?.enabled !== false;
}

/**
 * Fresh instances (some keep state of their own) of every trend detector, switched on or not: the center can switch
 * one on at run time (config/overrides.ts), so the analyzer asks isEnabled for each event. The outbreak detector
 * only when [outbreak] is on: its switch also turns the gateways' fingerprints on and off, and takes a restart.
 */
export function allDetectors(config: Config): Detector[] {
  return [harvest, floodDetector(), reputation, backscatter, bruteForce, loginAnomaly(), ...(config.outbreak.enabled ? [new OutbreakDetector(config)] : [])];
}
