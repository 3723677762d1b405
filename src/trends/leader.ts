// One analyzer leads: on PostgreSQL, the one that holds a session advisory lock (every node may run one; the others
// wait as standbys and take over when the leader's connection ends). SQLite has one host, and one analyzer per store.
import type { Logger } from '../core/log.ts';

// One lock per schema: two Postern installations may share a database, each in its own schema.
const TRY_LOCK = "select pg_try_advisory_lock(hashtext(current_schema() || '.postern-analyzer')) as ok";
const RETRY_MS = 5_000;

export interface Leadership {
  release(): Promise<void>;
}

/** Resolves once this process leads; `signal` abandons the wait (resolving undefined). */
export async function lead(url: string, password: string | undefined, log: Logger, signal?: AbortSignal): Promise<Leadership | undefined> {
  if (!/^postgres(ql)?:\/\//.test(url)) return { release: async () => undefined };
  const { default: pg } = await import('pg');
  let said = false;
  while (!signal?.aborted) {
    const client = new pg.Client({ connectionString: url, password });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const r = await client.query<{ ok: boolean }>(TRY_LOCK);
      if (r.rows[0]?.ok) {
        if (said) log.info('this analyzer now leads');
        return { release: () => client.end().catch(() => undefined) };
      }
      if (!said) log.info('another analyzer leads; this one waits as a standby');
      said = true;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not ask PostgreSQL for the analyzer lock; trying again');
    }
    await client.end().catch(() => undefined);
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
  return undefined;
}
