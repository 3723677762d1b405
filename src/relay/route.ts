// Where a copy goes: our own domains to the downstream (or the local Maildirs), everything else outbound.
import type { Config } from '../config/schema.ts';
import { domainOf } from '../core/address.ts';

export type Route = 'downstream' | 'local' | 'outbound';

export function routeFor(address: string, config: Config): Route {
  if (config.gateway.domains.includes(domainOf(address))) return config.relay.downstream ? 'downstream' : 'local';
  return 'outbound';
}

/** Delay before attempt number `attempts + 1`, from the retry schedule (the last step repeats). */
export function retryDelayMs(attempts: number, schedule: readonly number[]): number {
  const i = Math.min(Math.max(attempts - 1, 0), schedule.length - 1);
  return schedule[i] * 1000;
}
