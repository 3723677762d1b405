// The in-line half of the harvest detector. The analyzer turns a harvest into a policy within a poll or two, but an
// attacker pipelining RCPTs learns hundreds of addresses in that time; so the gateway counts unknown recipients
// itself, on the live counters every node shares, and refuses from the threshold on with the same limits as the
// analyzer's (trends.harvest). Like Cisco's DHAP, a blocked client learns nothing more: every recipient, good or
// bad, gets the same refusal. The guard only bridges the time until the analyzer's policy stands (BRIDGE_MS): from
// then on the policy decides, so an admin who lifts it lifts the block. Without an analyzer the guard blocks for as
// long as the count stays over the threshold.
import type { Config } from '../config/schema.ts';
import type { LiveCounters } from '../matrix/live.ts';
import { networkOf, plainIp } from '../trends/detector.ts';

const BRIDGE_MS = 10_000;

export class HarvestGuard {
  constructor(
    private readonly counters: LiveCounters,
    /** trends.harvest as in force now: an admin may change it in the center (config/overrides.ts). */
    private readonly settings: () => Config['trends']['harvest'],
    /** Whether an analyzer runs to turn a trip into a policy. */
    private readonly analyzed: boolean,
  ) {}

  private get cfg(): Config['trends']['harvest'] {
    return this.settings();
  }

  private get windowMs(): number {
    return this.cfg.window_s * 1000;
  }

  /** A block shorter than the bridge must not outlast its own policy. */
  private get bridgeMs(): number {
    return Math.min(BRIDGE_MS, this.cfg.ttl_s * 1000);
  }

  get enabled(): boolean {
    return this.cfg.enabled;
  }

  /**
   * Why this client is refused every recipient now: its address or its network is over the threshold and no policy
   * has taken over yet. Undefined when it is not.
   */
  async blocked(ip: string): Promise<{ scope: 'ip' | 'net'; target: string; unknown: number } | undefined> {
    const over = await this.over(ip);
    if (!over || !this.analyzed) return over;
    const w = this.windowMs;
    if ((await this.counters.count(`h:trip:${over.target}`, w)) === 0) {
      await this.counters.hit(`h:trip:${over.target}`, w);
      await this.counters.hit(`h:bridge:${over.target}`, this.bridgeMs);
      return over;
    }
    // Tripped before: block only while the analyzer's policy may still be on its way.
    return (await this.counters.count(`h:bridge:${over.target}`, this.bridgeMs)) > 0 ? over : undefined;
  }

  private async over(ip: string): Promise<{ scope: 'ip' | 'net'; target: string; unknown: number } | undefined> {
    const a = plainIp(ip);
    const w = this.windowMs;
    const unknown = await this.counters.count(`h:ip:${a}`, w);
    if (unknown >= this.cfg.ip_unknown) {
      const ok = await this.counters.count(`h:ok:${a}`, w);
      if (unknown / (unknown + ok) >= this.cfg.ip_ratio) return { scope: 'ip', target: a, unknown };
    }
    const net = networkOf(a);
    const netUnknown = await this.counters.count(`h:net:${net}`, w);
    if (netUnknown >= this.cfg.net_unknown && (await this.counters.count(`h:netips:${net}`, w)) >= this.cfg.net_min_ips) {
      return { scope: 'net', target: net, unknown: netUnknown };
    }
    return undefined;
  }

  /** Counts an unknown recipient from ip (and its network, and the address among the network's addresses). */
  async unknown(ip: string): Promise<void> {
    const a = plainIp(ip);
    const net = networkOf(a);
    const first = (await this.counters.hit(`h:ip:${a}`, this.windowMs)) === 1;
    await this.counters.hit(`h:net:${net}`, this.windowMs);
    // The first unknown of an address within the window: one more address of the network is harvesting.
    if (first) await this.counters.hit(`h:netips:${net}`, this.windowMs);
  }

  /** Counts a good recipient from ip, for the share of unknown ones. */
  known(ip: string): Promise<number> {
    return this.counters.hit(`h:ok:${plainIp(ip)}`, this.windowMs);
  }
}
