// postern store purge|rollups: runs the store's upkeep now (events past their retention rolled up and deleted, finished
// messages, old roll-ups and long-expired policies deleted) instead of waiting for the hourly run of a running Postern,
// and lists the hourly roll-ups of deleted events. Safe beside a running Postern: it is one more writer of the store.
import { sql } from 'kysely';
import { args, fmtTime, load, withStore } from './common.ts';
import { Upkeep, type PurgeResult } from '../store/upkeep.ts';
import { createLogger } from '../core/log.ts';
import type { LoadedConfig } from '../config/load.ts';

const USAGE = 'usage: postern store purge [--older-than-days N] [--json] | rollups [--type T] [--since 24h] [--json]';
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

export async function runStore(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = args(rest, { 'older-than-days': { type: 'string' }, type: { type: 'string' }, since: { type: 'string' }, json: { type: 'boolean' } });
  if (sub === 'purge') return purge(load(values.config), values['older-than-days'], Boolean(values.json));
  if (sub === 'rollups') return rollups(load(values.config), values.type, values.since, Boolean(values.json));
  console.error(USAGE);
  return 64;
}

async function purge(loaded: LoadedConfig, olderThan: string | undefined, json: boolean): Promise<number> {
  const days = olderThan === undefined ? undefined : Number(olderThan);
  if (days !== undefined && (!Number.isFinite(days) || days < 0)) {
    console.error(`postern: --older-than-days must be a number of days, not "${olderThan}"`);
    return 64;
  }
  const cfg = loaded.config.store;
  // --older-than-days is one retention for every type, whatever event_retention_by_type says.
  const store = days === undefined ? cfg : { ...cfg, event_retention_days: days, event_retention_by_type: {} };
  return withStore(loaded, async (s) => {
    const r = await new Upkeep(s.db, { store, log: createLogger('warn') }).purge();
    if (json) console.log(JSON.stringify(toJson(store.event_retention_days, r)));
    else print(store.event_retention_days, days !== undefined, r, cfg.rollup_retention_days);
    return 0;
  });
}

function toJson(days: number, r: PurgeResult) {
  return {
    older_than_days: days,
    events: r.events,
    classes: r.classes,
    rolled_up: r.rolledUp,
    rollups_deleted: r.rollupsDeleted,
    policies: r.policies,
    messages: r.messages,
    recipients: r.recipients,
  };
}

function print(days: number, override: boolean, r: PurgeResult, rollupDays: number): void {
  if (!override) {
    for (const c of r.classes) console.log(`${c.match === '*' ? 'other events' : c.match}, older than ${c.days} day(s): ${c.events} event(s)`);
  }
  console.log(`older than ${days} day(s): ${r.events} event(s), ${r.messages} message(s) and ${r.recipients} recipient row(s) deleted`);
  console.log(`events rolled up into ${r.rolledUp} hourly row(s); ${r.rollupsDeleted} roll-up row(s) older than ${rollupDays} day(s) and ${r.policies} expired policy(ies) deleted`);
}

async function rollups(loaded: LoadedConfig, type: string | undefined, since: string | undefined, json: boolean): Promise<number> {
  const m = since === undefined ? null : /^(\d+)([mhd])$/.exec(since);
  if (since !== undefined && !m) {
    console.error(`postern: --since must be a duration such as 30m, 24h or 7d, not "${since}"`);
    return 64;
  }
  return withStore(loaded, async (s) => {
    let q = s.db.selectFrom('event_rollups').select(['hour', 'type', 'count', 'ips']);
    if (m) q = q.where('hour', '>=', Date.now() - Number(m[1]) * UNIT_MS[m[2]!]!);
    // A type or a prefix, as in event_retention_by_type: "smtp" lists every smtp.* type.
    if (type !== undefined) q = q.where((eb) => eb.or([eb('type', '=', type), eb(sql<string>`substr(type, 1, ${type.length + 1})`, '=', `${type}.`)]));
    const rows = await q.orderBy('hour').orderBy('type').execute();
    if (json) console.log(JSON.stringify(rows, null, 2));
    else if (!rows.length) console.log('no roll-ups');
    else {
      for (const r of rows) console.log(`${fmtTime(r.hour)}  ${r.type.padEnd(22)} ${String(r.count).padStart(8)} event(s) from ${r.ips} address(es)`);
      console.log(`${rows.length} hourly row(s), ${rows.reduce((n, r) => n + r.count, 0)} event(s)`);
    }
    return 0;
  });
}
