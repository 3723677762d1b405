// postern trends status: is the analyzer keeping up, what did it find lately, and which policies does it hold.
import { args, fmtTime, load, withStore } from './common.ts';
import { listPolicies } from '../policy/admin.ts';

export async function runTrends(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = args(rest, { json: { type: 'boolean' }, limit: { type: 'string' } });
  if (sub !== 'status') {
    console.error('usage: postern trends status [--limit N] [--json]');
    return 64;
  }
  const limit = Number(values.limit ?? 10);
  if (!Number.isInteger(limit) || limit < 1) {
    console.error(`postern: --limit must be a whole number, not "${values.limit}"`);
    return 64;
  }
  const loaded = load(values.config);
  return withStore(loaded, async (s) => {
    const now = Date.now();
    const state = await s.db.selectFrom('analyzer_state').selectAll().where('id', '=', 1).executeTakeFirst();
    const cursor = Number(state?.last_event_id ?? 0);
    const newest = await s.db.selectFrom('events').select(['id', 'ts']).orderBy('id', 'desc').limit(1).executeTakeFirst();
    const at = cursor ? await s.db.selectFrom('events').select('ts').where('id', '=', cursor).executeTakeFirst() : undefined;
    // Events the analyzer has not read yet (of every type; it reads only those its detectors need).
    const behind = await s.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).where('id', '>', cursor).executeTakeFirstOrThrow();
    const findings = await s.db.selectFrom('events').select(['ts', 'data']).where('type', '=', 'trends.finding').orderBy('id', 'desc').limit(limit).execute();
    const policies = await listPolicies(s.db, { source: 'analyzer' });
    const bySource: Record<string, number> = {};
    for (const p of policies) bySource[p.source] = (bySource[p.source] ?? 0) + 1;
    const out = {
      enabled: loaded.config.trends.enabled,
      cursor,
      cursor_event_at: at ? Number(at.ts) : null,
      state_written_at: state ? Number(state.updated_at) : null,
      newest_event: newest ? Number(newest.id) : 0,
      events_unread: Number(behind.n),
      lag_ms: at && newest && Number(newest.id) > cursor ? now - Number(at.ts) : 0,
      active_policies: bySource,
      recent_findings: findings.map((f) => ({ ts: Number(f.ts), ...(JSON.parse(f.data) as Record<string, unknown>) })),
    };
    if (values.json) {
      console.log(JSON.stringify(out, null, 2));
      return 0;
    }
    console.log(`analyzer     ${out.enabled ? 'enabled' : 'disabled (trends.enabled = false)'}`);
    console.log(`cursor       event ${cursor}${out.cursor_event_at ? ` of ${fmtTime(out.cursor_event_at)}` : ''}${out.state_written_at ? `, saved ${fmtTime(out.state_written_at)}` : ', never run'}`);
    console.log(`behind       ${out.events_unread} event(s) unread${out.lag_ms ? `, ${(out.lag_ms / 1000).toFixed(1)} s behind the newest` : ''}`);
    console.log(`policies     ${Object.entries(bySource).map(([k, n]) => `${k.replace('analyzer:', '')} ${n}`).join(', ') || 'none active from the analyzer'}`);
    console.log('recent findings');
    if (!findings.length) console.log('  none');
    for (const f of out.recent_findings as { ts: number; detector: string; policy: string; created: boolean; target_kind: string; target: string; action: string; reason: string }[]) {
      console.log(`  ${fmtTime(f.ts)}  ${f.detector.padEnd(12)} ${f.created ? 'new     ' : 'extended'} ${f.policy}  ${f.target_kind}:${f.target} ${f.action}  ${f.reason}`);
    }
    return 0;
  });
}
