// postern queue list|retry|flush: the relay's waiting messages, shared with a running Postern through the store.
import { args, fmtTime, load, withStore } from './common.ts';
import { cliActor } from './quarantine.ts';
import { silentLogger } from '../core/log.ts';
import { EventSink } from '../matrix/sink.ts';
import { requestRetry, WAITING } from '../relay/queue-control.ts';
import type { StoreDb } from '../store/db.ts';
import { spoolOnDisk } from '../gateway/spool.ts';

/** retry/flush through the relay's own function, recorded as an event like the center's. */
async function retry(s: StoreDb, id: string | null, now: number): Promise<number> {
  const sink = new EventSink(s, silentLogger);
  const n = await requestRetry(s.db, sink.emit, id, cliActor(), now);
  await sink.flush();
  return n;
}

export async function runQueue(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = args(rest, { json: { type: 'boolean' } });
  const loaded = load(values.config);
  return withStore(loaded, async (s) => {
    const now = Date.now();
    switch (sub) {
      case 'list': {
        const rows = await s.db
          .selectFrom('recipients')
          .innerJoin('messages', 'messages.id', 'recipients.msg_id')
          .select(['recipients.msg_id', 'recipients.rcpt', 'recipients.deliver_to', 'recipients.status', 'recipients.attempts', 'recipients.next_attempt_at', 'recipients.last_error', 'messages.mail_from', 'messages.received_at', 'messages.size'])
          .where('recipients.status', 'in', [...WAITING])
          .orderBy('messages.received_at')
          .execute();
        if (values.json) console.log(JSON.stringify(rows, null, 2));
        else if (!rows.length) console.log('queue is empty');
        else {
          for (const r of rows) {
            console.log(`${r.msg_id}  ${fmtTime(r.received_at)}  <${r.mail_from}> → <${r.deliver_to}>  ${r.status}, ${r.attempts} attempt(s), next ${fmtTime(r.next_attempt_at)}${r.last_error ? `\n    last error: ${r.last_error}` : ''}`);
          }
          console.log(`${new Set(rows.map((r) => r.msg_id)).size} message(s), ${rows.length} recipient(s)`);
        }
        if (!values.json) {
          // Segment files hold delivered messages too until the file goes (docs/architecture.md).
          const d = spoolOnDisk(loaded.dataDir);
          const mb = (d.segmentBytes / 1024 / 1024).toFixed(1);
          console.log(
            `spool on disk: ${d.segmentFiles} segment file(s), ${mb} MB; ${d.files} per-message file(s)` +
              (d.damaged ? `; ${d.damaged} damaged segment file(s) kept (.bad)` : ''),
          );
        }
        return 0;
      }
      case 'retry': {
        const id = positionals[0];
        if (!id) {
          console.error('usage: postern queue retry <queue-id>');
          return 64;
        }
        const n = await retry(s, id, now);
        if (!n) {
          console.error(`postern: nothing waiting for ${id}`);
          return 1;
        }
        console.log(`${id}: ${n} recipient(s) due now`);
        return 0;
      }
      case 'flush': {
        console.log(`${await retry(s, null, now)} recipient(s) due now`);
        return 0;
      }
      default:
        console.error('usage: postern queue list | retry <queue-id> | flush');
        return 64;
    }
  });
}
