// postern store purge: deletes events and finished messages older than store.event_retention_days now, instead of
// waiting for the hourly run of a running Postern. Safe beside a running Postern: it is one more writer of the store.
import { args, load, withStore } from './common.ts';
import { Upkeep } from '../store/upkeep.ts';
import { createLogger } from '../core/log.ts';

export async function runStore(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = args(rest, { 'older-than-days': { type: 'string' }, json: { type: 'boolean' } });
  if (sub !== 'purge') {
    console.error('usage: postern store purge [--older-than-days N] [--json]');
    return 64;
  }
  const loaded = load(values.config);
  const days = values['older-than-days'] === undefined ? loaded.config.store.event_retention_days : Number(values['older-than-days']);
  if (!Number.isFinite(days) || days < 0) {
    console.error(`postern: --older-than-days must be a number of days, not "${values['older-than-days']}"`);
    return 64;
  }
  return withStore(loaded, async (s) => {
    const r = await new Upkeep(s.db, { retentionDays: days, log: createLogger('warn') }).purge();
    if (values.json) console.log(JSON.stringify({ older_than_days: days, ...r }));
    else console.log(`older than ${days} day(s): ${r.events} event(s), ${r.messages} message(s) and ${r.recipients} recipient row(s) deleted`);
    return 0;
  });
}
