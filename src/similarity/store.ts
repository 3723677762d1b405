// The similarity index's window in the store (table similarity_entries): a row per indexed message, written as it
// is indexed, cluster ids rewritten on merge, old rows pruned. A restart loads the rows back into a fresh index.
//
// A row per message rather than a periodic snapshot: a crash then loses nothing, the writes are small appends that
// batch with the message's own, and a restart reads only the window, not a blob as large as the whole index.
import { z } from 'zod';
import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import type { Logger } from '../core/log.ts';
import { FINGERPRINT_VERSION, type Fingerprint } from './fingerprint-data.ts';
import { PERMUTATIONS } from './minhash.ts';
import type { EntryFacts, InsertResult, SimilarityIndex } from './index.ts';

const u32 = z.number().int().min(0).max(0xffffffff);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** A stored fingerprint, checked field by field: a bad row is reported with the field at fault and skipped. */
export const fingerprintSchema = z.strictObject({
  v: z.literal(FINGERPRINT_VERSION),
  tlsh: z.string().regex(/^[0-9A-F]{70}$/).optional(),
  minhash: z.union([z.array(u32).length(PERMUTATIONS), z.array(u32).length(0)]),
  shingles: z.number().int().min(0),
  attachments: z.array(hex64),
  members: z.array(hex64),
  structure: z.strictObject({
    layout: z.string(),
    types: z.array(z.string()),
    names: z.array(z.string()),
    domains: z.array(z.string()),
    shape: z.string(),
  }),
});

export const factsSchema = z.strictObject({
  ip: z.string(),
  senderDomain: z.string(),
  recipients: z.number().int().min(0),
  suspicious: z.boolean(),
  outbound: z.boolean().optional(),
});

function parseRow(json: string, schema: z.ZodType, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new Error(`${what}: not JSON (${(err as Error).message})`);
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${what}.${i.path.join('.')}: ${i.message}`);
  }
  return r.data;
}

export class SimilarityStore {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly log?: Logger,
  ) {}

  /** Writes one indexed message and, when it merged clusters, moves the merged clusters' rows to the survivor. */
  async record(id: string, fp: Fingerprint, ts: number, facts: EntryFacts, result: InsertResult): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('similarity_entries')
        .values({ id, ts, cluster: result.cluster, fingerprint: JSON.stringify(fp), facts: JSON.stringify(facts) })
        .execute();
      if (result.merged.length) await tx.updateTable('similarity_entries').set({ cluster: result.cluster }).where('cluster', 'in', result.merged).execute();
    });
  }

  /**
   * Writes several indexed messages in the caller's transaction (the outbreak detector's step): the rows, then each
   * merge's rewrite, in the order they happened.
   */
  async recordMany(tx: Kysely<DB>, items: readonly { id: string; fp: Fingerprint; ts: number; facts: EntryFacts; result: InsertResult }[]): Promise<void> {
    for (let i = 0; i < items.length; ) {
      // Rows in chunks (a statement has a bounded number of parameters); a merge is applied after the rows before it.
      let j = i;
      while (j < items.length && j - i < 100 && (j === i || !items[j - 1].result.merged.length)) j++;
      const chunk = items.slice(i, j);
      await tx
        .insertInto('similarity_entries')
        .values(chunk.map((x) => ({ id: x.id, ts: x.ts, cluster: x.result.cluster, fingerprint: JSON.stringify(x.fp), facts: JSON.stringify(x.facts) })))
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      const last = chunk[chunk.length - 1].result;
      if (last.merged.length) await tx.updateTable('similarity_entries').set({ cluster: last.cluster }).where('cluster', 'in', last.merged).execute();
      i = j;
    }
  }

  /** Deletes rows older than `cutoff` (ms); returns how many. */
  async prune(cutoff: number): Promise<number> {
    const r = await this.db.deleteFrom('similarity_entries').where('ts', '<', cutoff).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /**
   * Loads the rows of the window ending at `now` into `index`, oldest first, each in the cluster it had. A row
   * that does not read back is logged with its id and the field at fault, and left out.
   */
  async load(index: SimilarityIndex, now: number): Promise<{ loaded: number; skipped: number }> {
    const rows = await this.db
      .selectFrom('similarity_entries')
      .selectAll()
      .where('ts', '>=', now - index.options.windowMs)
      .orderBy('ts')
      .orderBy('id')
      .execute();
    let loaded = 0;
    let skipped = 0;
    for (const row of rows) {
      try {
        const fp = parseRow(row.fingerprint, fingerprintSchema, 'fingerprint') as Fingerprint;
        const facts = parseRow(row.facts, factsSchema, 'facts') as EntryFacts;
        index.restore(row.id, fp, Number(row.ts), facts, Number(row.cluster));
        loaded++;
      } catch (err) {
        skipped++;
        this.log?.warn({ entry: row.id, err: (err as Error).message }, 'similarity entry not loaded');
      }
    }
    return { loaded, skipped };
  }
}
