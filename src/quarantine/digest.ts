// Quarantine digests: per recipient, what was held since the last digest, sent through Postern's own relay on a
// cron schedule (or now, from `postern digest run`). Nothing held since the last one: no digest.
import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { enqueue } from './enqueue.ts';
import { linkUrl } from './links.ts';
import type { LinkSigner } from './tokens.ts';
import type { QuarantineEntry, QuarantineService } from './service.ts';
import { renderDigest, type DigestLinks, type RenderedDigest } from './digest-render.ts';

export interface DigestDeps {
  quarantine: QuarantineService;
  signer: LinkSigner;
  /** Base of the links, e.g. "https://mail-gw.example.com" (links.ts publicBase). */
  base: string;
  log: Logger;
}

export interface DigestRun {
  sent: { rcpt: string; entries: number; queueId: string }[];
  skipped: { rcpt: string; reason: string }[];
}

/** The sender of digests: quarantine.digest.from, or postmaster@ the first accepted domain. */
export function digestFrom(config: Config): string {
  return config.quarantine.digest.from || `postmaster@${config.gateway.domains[0] ?? config.gateway.hostname}`;
}

/** Held entries of one recipient created after `since` and not after `now`, newest first, up to max_entries. */
async function dueEntries(deps: DigestDeps, rcpt: string, since: number, now: number): Promise<{ entries: QuarantineEntry[]; total: number }> {
  const max = deps.quarantine.deps.config.quarantine.digest.max_entries;
  return deps.quarantine.list({ rcpt, status: 'held', since: since + 1, until: now + 1, limit: max });
}

function linksFor(deps: DigestDeps, rcpt: string, entries: readonly QuarantineEntry[], now: number): DigestLinks {
  const ttl = deps.quarantine.deps.config.quarantine.link_ttl_days;
  const url = (action: 'release' | 'delete' | 'allow' | 'view', qid: string) => linkUrl(deps.signer, deps.base, action, qid, rcpt, ttl, now);
  return {
    // "*": the whole quarantine of this recipient; a per-entry view link names the entry to open.
    quarantine: url('view', '*'),
    entries: Object.fromEntries(
      entries.map((e) => [e.id, { release: url('release', e.id), delete: url('delete', e.id), allow: url('allow', e.id), view: url('view', e.id) }]),
    ),
  };
}

async function lastSent(deps: DigestDeps, rcpt?: string): Promise<Map<string, number>> {
  let q = deps.quarantine.deps.db.selectFrom('digest_state').select(['rcpt', 'last_sent_at']);
  if (rcpt) q = q.where('rcpt', '=', rcpt.toLowerCase());
  return new Map((await q.execute()).map((r) => [r.rcpt, Number(r.last_sent_at)]));
}

/** The digest `rcpt` would get now, without sending or recording it; null when nothing new is held for them. */
export async function previewDigest(deps: DigestDeps, rcpt: string, now = Date.now()): Promise<RenderedDigest | null> {
  const since = (await lastSent(deps, rcpt)).get(rcpt.toLowerCase()) ?? 0;
  const { entries, total } = await dueEntries(deps, rcpt.toLowerCase(), since, now);
  if (!entries.length) return null;
  const config = deps.quarantine.deps.config;
  return renderDigest({ rcpt, entries, total, links: linksFor(deps, rcpt, entries, now), config, now });
}

function compose(config: Config, rcpt: string, d: RenderedDigest, now: number): Promise<Buffer> {
  const from = digestFrom(config);
  const mail = new MailComposer({
    from,
    to: rcpt,
    subject: d.subject,
    text: d.text,
    html: d.html,
    date: new Date(now),
    messageId: `<digest.${randomUUID()}@${config.gateway.hostname}>`,
    // RFC 3834: an automatic message; vacation responders and the like must not answer it. (No X-Postern-* field:
    // the relay strips those from every copy, since senders could forge them.)
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
  });
  return mail.compile().build();
}

/**
 * Sends every due digest (or only `recipient`'s). The recipient's digest_state row is claimed in the transaction
 * that queues the digest, conditional on the value read before: of two nodes running the same schedule, one sends
 * and the other finds the row changed and skips. The row keeps the creation time of the newest entry sent, so an
 * entry held while the digest was being built is in the next one.
 */
export async function runDigests(deps: DigestDeps, opts: { recipient?: string; now?: number } = {}): Promise<DigestRun> {
  const now = opts.now ?? Date.now();
  const svc = deps.quarantine;
  const { config, emit } = svc.deps;
  const state = await lastSent(deps, opts.recipient);
  const due = await svc.recipientsWithNew((r) => state.get(r) ?? 0, opts.recipient);
  const run: DigestRun = { sent: [], skipped: [] };
  for (const { rcpt } of due) {
    try {
      const prev = state.get(rcpt);
      const { entries, total } = await dueEntries(deps, rcpt, prev ?? 0, now);
      if (!entries.length) {
        run.skipped.push({ rcpt, reason: 'nothing held since the last digest' });
        continue;
      }
      const rendered = renderDigest({ rcpt, entries, total, links: linksFor(deps, rcpt, entries, now), config, now });
      const raw = await compose(config, rcpt, rendered, now);
      const newest = entries[0].created_at;
      const queueId = await enqueue(
        svc.deps,
        {
          raw,
          mailFrom: digestFrom(config),
          rcpt,
          subject: rendered.subject,
          messageId: null,
          verdict: { digest_for: rcpt, entries: total },
          reason: `quarantine digest of ${total} held message(s)`,
        },
        async (trx) => {
          if (prev === undefined) {
            const r = await trx
              .insertInto('digest_state')
              .values({ rcpt, last_sent_at: newest, last_count: total })
              .onConflict((oc) => oc.column('rcpt').doNothing())
              .executeTakeFirst();
            return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
          }
          const u = await trx
            .updateTable('digest_state')
            .set({ last_sent_at: newest, last_count: total })
            .where('rcpt', '=', rcpt)
            .where('last_sent_at', '=', prev)
            .executeTakeFirst();
          return Number(u.numUpdatedRows) > 0;
        },
      );
      if (!queueId) {
        run.skipped.push({ rcpt, reason: 'sent by another node meanwhile' });
        continue;
      }
      svc.deps.submit?.(queueId);
      emit('quarantine.digest_sent', { data: { rcpt, entries: total, listed: Math.min(total, config.quarantine.digest.max_entries), queue_id: queueId } });
      run.sent.push({ rcpt, entries: total, queueId });
    } catch (err) {
      // One recipient's failure (a full disk, a store error) must not cost the others their digest.
      deps.log.warn({ rcpt, err: (err as Error).message }, 'quarantine digest failed');
      run.skipped.push({ rcpt, reason: `failed: ${(err as Error).message}` });
    }
  }
  return run;
}

export interface DigestSchedule {
  stop(): void;
  nextRun(): Date | null;
}

/** Runs the digests on quarantine.digest.schedule in quarantine.digest.timezone; a run still going skips the next. */
export function startDigestSchedule(deps: DigestDeps): DigestSchedule {
  const { schedule, timezone } = deps.quarantine.deps.config.quarantine.digest;
  const job = new Cron(
    schedule,
    {
      timezone,
      protect: () => deps.log.warn({ schedule }, 'quarantine digests still running from the last time; this run is skipped'),
    },
    async () => {
      const t0 = Date.now();
      try {
        const r = await runDigests(deps);
        deps.log.info({ sent: r.sent.length, skipped: r.skipped.length, ms: Date.now() - t0, next: job.nextRun()?.toISOString() }, 'quarantine digests run');
      } catch (err) {
        deps.log.error({ err: (err as Error).message }, 'quarantine digest run failed');
      }
    },
  );
  deps.log.info({ schedule, timezone, next: job.nextRun()?.toISOString() }, 'quarantine digests scheduled');
  return { stop: () => job.stop(), nextRun: () => job.nextRun() };
}
