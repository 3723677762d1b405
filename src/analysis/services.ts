// The services the checks read (AnalysisServices), made the same way for a process's event loop and for each
// analysis thread: the classifier's model and the correspondents learned from outbound mail, held in memory and
// following the store as other processes learn.
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { CorrespondentBook } from '../outbound/correspondents.ts';
import type { DB } from '../store/schema.ts';
import { BayesService } from './bayes/store.ts';

export interface LoadedServices {
  bayes: BayesService;
  correspondents: CorrespondentBook;
  /** Stops following the store. */
  stop(): void;
}

/**
 * Loads both and starts their reloads. `classify: false` leaves the model empty and unwatched: where no data phase
 * runs (its analysis is in threads that hold their own copies), a trained model would be tens of MB for nothing.
 */
export async function loadAnalysisServices(
  db: Kysely<DB>,
  config: Config,
  options: ReadonlyMap<string, unknown>,
  log: Logger,
  { classify }: { classify: boolean },
): Promise<LoadedServices> {
  const bayes = new BayesService(db, (err) => log.warn({ err: err.message }, 'bayes model reload failed'));
  if (classify) {
    await bayes.load();
    bayes.watch((options.get('bayes') as { reload_interval_ms?: number } | undefined)?.reload_interval_ms ?? 5_000);
  }
  const correspondents = new CorrespondentBook(db, { sentRetentionMs: config.outbound.sent_retention_days * 86_400_000 }, (err) =>
    log.warn({ err: err.message }, 'correspondents reload failed'),
  );
  await correspondents.load();
  correspondents.watch(5_000);
  return {
    bayes,
    correspondents,
    stop() {
      bayes.stop();
      correspondents.stop();
    },
  };
}
