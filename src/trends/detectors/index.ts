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

/** Fresh detector instances (some keep state of their own) for the detectors enabled in config. */
export function detectors(config: Config): Detector[] {
  const t = config.trends;
  const all: [boolean, () => Detector][] = [
    [t.harvest.enabled, () => harvest],
    [t.flood.enabled, floodDetector],
    [t.reputation.enabled, () => reputation],
    [t.backscatter.enabled, () => backscatter],
    [t.brute_force.enabled, () => bruteForce],
    [t.login_anomaly.enabled, loginAnomaly],
    [config.outbreak.enabled, () => new OutbreakDetector(config)],
  ];
  return all.filter(([on]) => on).map(([, make]) => make());
}
