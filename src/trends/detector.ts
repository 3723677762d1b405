// What a trend detector is: a module that reads the event stream in order, keeps its own windows, and reports
// findings; the analyzer turns each finding into a live policy. Detectors never write anything themselves.
import type { Config } from '../config/schema.ts';
import type { PolicyInput } from '../policy/admin.ts';
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Windows } from './windows.ts';

/** One stored event as the analyzer reads it. */
export interface MatrixEvent {
  id: number;
  ts: number;
  type: string;
  ip: string | null;
  conn_id: string | null;
  msg_id: string | null;
  data: Record<string, unknown>;
}

export interface Finding {
  detector: string;
  policy: PolicyInput;
}

/** Something a person should look at that is not a policy: a likely compromised account, a login from somewhere new. */
export interface Alert {
  kind: string;
  severity: 'critical' | 'high' | 'medium' | 'low';
  summary: string;
  user?: string;
  ip?: string;
  evidence: Record<string, unknown>;
}

export interface DetectorContext {
  windows: Windows;
  config: Config;
  /** Whether an address is in gateway.trusted_networks: detectors never act against those. */
  trusted(ip: string): boolean;
  /** Reports an alert (a `trends.alert` event; the same one at most every 30 s). */
  alert?(detector: string, a: Alert): void;
}

export interface Detector {
  name: string;
  /** Event types this detector reads; the analyzer reads only the union of these. */
  types: readonly string[];
  /** Longest window the detector keeps, so a restarted analyzer replays that much history. */
  horizonMs(config: Config): number;
  observe(e: MatrixEvent, ctx: DetectorContext): Finding[] | undefined;
  /**
   * A detector whose state lives in the store as well as in memory (the outbreak detector's similarity index):
   * `load` puts it back before the stream is followed (events it already holds are then passed over), `flush`
   * writes what it gathered, before the cursor moves past the events it came from.
   */
  load?(db: Kysely<DB>, now: number, log: Logger): Promise<void>;
  /** Returns how many rows the gateways should read now (0 or nothing: none). */
  flush?(db: Kysely<DB>, now: number): Promise<number | void>;
}

/** The /24 of an IPv4 address or the /64 of an IPv6 one, as CIDR. */
export function networkOf(ip: string): string {
  const plain = ip.replace(/^::ffff:/i, '');
  if (plain.includes('.')) {
    const p = plain.split('.');
    return `${p[0]}.${p[1]}.${p[2]}.0/24`;
  }
  const groups = expand6(plain);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

function expand6(ip: string): string[] {
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}

export const plainIp = (ip: string): string => ip.replace(/^::ffff:/i, '');

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
