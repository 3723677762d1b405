// The live half of the data matrix: counters over sliding windows that every gateway node shares, and the fan-out
// that tells every node a policy changed. In-process by default (matrix.live = "memory"); Redis at scale.
import type { Config } from '../config/schema.ts';

export interface LiveCounters {
  /**
   * Adds `n` (default 1) to `key` at `now` and returns the key's total over the last `windowMs`, this hit included.
   * A key lives no longer than its window after its last hit.
   */
  hit(key: string, windowMs: number, n?: number, now?: number): Promise<number>;
  /** The key's total over the last `windowMs`, without adding to it. */
  count(key: string, windowMs: number, now?: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * What a change on the bus says: which policy, and whether it was added or changed (`set`) or removed (`removed`);
 * or (`similarity`) that the analyzer wrote new rows of the similarity index, which every gateway's mirror of the
 * clusters then reads at once (id: how many).
 */
export interface PolicyChange {
  /**
   * `audit`: the audited mailbox users changed (monitor/audit/users.ts; id: the pattern). `settings`: a detector's
   * settings changed in the center (config/overrides.ts; id: the detector).
   */
  op: 'set' | 'removed' | 'similarity' | 'audit' | 'settings';
  id: string;
}

export interface PolicyBus {
  publish(change: PolicyChange): Promise<void>;
  /** Calls `fn` for every change published by any node (this one included); returns the unsubscribe function. */
  subscribe(fn: (change: PolicyChange) => void): () => void;
  close(): Promise<void>;
}

export interface Live {
  counters: LiveCounters;
  bus: PolicyBus;
  close(): Promise<void>;
}

export type LiveFactory = (config: Config) => Promise<Live>;
