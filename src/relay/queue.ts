// The relay: delivers spooled messages to the downstream (or the local Maildirs, or other domains for DSNs),
// retries temporary failures on the schedule, returns permanent failures to the sender, and recovers at start.
import type { Kysely, Selectable } from 'kysely';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Emit } from '../core/events.ts';
import { queueId } from '../core/ids.ts';
import { domainOf } from '../core/address.ts';
import type { DB, MessagesTable, RecipientsTable } from '../store/schema.ts';
import type { Spool } from '../gateway/spool.ts';
import { MaildirStore } from './maildir.ts';
import { authResultsOf, prepareCopy } from './headers.ts';
import { createTransport, OutboundTransports, send, type Outcome } from './transport.ts';
import { retryDelayMs, routeFor } from './route.ts';
import { buildDsn, dsnQueueEntry, enhancedOf, type FailedRecipient } from './dsn.ts';
import { OutcomeWriter, type OutcomeRecord, type RecipientUpdate } from './outcomes.ts';
import { crlfOnly } from './wire.ts';
import type { FastSqlite } from '../store/fast.ts';

type Rcpt = Selectable<RecipientsTable>;
type Msg = Selectable<MessagesTable>;

export interface RelayDeps {
  config: Config;
  db: Kysely<DB>;
  /** SQLite's prepared-statement writers, for recording outcomes. */
  fast?: FastSqlite;
  spool: Spool;
  /** Makes committed transactions durable (StoreDb.durable); called before a spool file is removed. */
  durable?: () => Promise<void>;
  maildir: MaildirStore;
  log: Logger;
  emit: Emit;
}

const OPEN = ['queued', 'deferred'];

/**
 * What the gateway just committed for a message: its rows and bytes, exactly as written to the store and the
 * spool. A relay in the same process takes them from memory for the first attempt instead of reading them back.
 */
export interface Handoff {
  message: Msg;
  recipients: Rcpt[];
  /** Absent when the message was taken by another process: the relay reads the spool file. */
  raw?: Buffer;
}

/** Bytes of handed-off messages held for their first attempt; beyond it they are read back from the spool. */
const HANDOFF_BYTES = 64 * 1024 * 1024;
const handoffSize = (h: Handoff) => 1024 + (h.raw?.length ?? 0);

export class Relay {
  private queued = new Set<string>();
  private waiting: string[] = [];
  private inflight = new Set<string>();
  private active = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private downstream: Transporter | null = null;
  private outbound: OutboundTransports;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private readonly outcomes: OutcomeWriter;
  private handoffs = new Map<string, Handoff>();
  private handoffBytes = 0;
  /** Messages the relay must leave alone: their copies are being quarantined (retro/). */
  private readonly withheld = new Set<string>();

  constructor(private readonly deps: RelayDeps) {
    const ds = deps.config.relay.downstream;
    if (ds) {
      this.downstream = createTransport({
        host: ds.host,
        port: ds.port,
        lmtp: ds.protocol === 'lmtp',
        tls: ds.tls,
        tlsVerify: ds.tls_verify,
        maxConnections: ds.max_connections,
        name: deps.config.gateway.hostname,
        connectTimeoutMs: deps.config.relay.connect_timeout_ms,
        commandTimeoutMs: deps.config.relay.command_timeout_ms,
      });
    }
    this.outbound = new OutboundTransports(deps.config);
    this.outcomes = new OutcomeWriter(deps.db, deps.spool, deps.durable ?? (() => Promise.resolve()), deps.fast);
  }

  /** Resumes the spool: drops files that never got a 250, then schedules every open recipient. */
  async start(pollMs = 1000): Promise<void> {
    const { spool, db, emit } = this.deps;
    const tmp = await spool.clearTmp();
    const files = await spool.listIds();
    let orphans = 0;
    let finished = 0;
    for (let i = 0; i < files.length; i += 500) {
      const chunk = files.slice(i, i + 500);
      const rows = await db.selectFrom('messages').select(['id', 'status']).where('id', 'in', chunk).execute();
      const known = new Map(rows.map((r) => [r.id, r.status]));
      for (const id of chunk) {
        const status = known.get(id);
        if (status === undefined) {
          // Written but never committed: the client got no 250 and will send it again.
          orphans++;
          await spool.remove(id);
        } else if (status === 'done') {
          finished++;
          await spool.remove(id);
        }
      }
    }
    const open = await db
      .selectFrom('recipients')
      .select(({ fn }) => [fn.count<number>('msg_id').as('n')])
      .where('status', 'in', OPEN)
      .executeTakeFirst();
    // A torn tail is what a crash in the middle of an append leaves (never a message that got a 250); damage with
    // good records after it is worth an operator's look (the file is kept as .bad once empty).
    const torn = spool.segments?.torn ?? [];
    const damaged = spool.segments?.damaged ?? [];
    const unreadable = spool.segments?.unreadable ?? [];
    if (damaged.length) this.deps.log.warn({ damaged }, 'spool segments had damaged records; the records after them were recovered');
    if (unreadable.length) this.deps.log.error({ unreadable }, 'spool segment files could not be read; their messages are deferred until the files can be read and Postern restarts');
    emit('relay.recovered', {
      data: {
        orphans_removed: orphans,
        finished_removed: finished,
        tmp_removed: tmp,
        open_recipients: Number(open?.n ?? 0),
        ...(torn.length && { segment_torn_tails: torn.length }),
        ...(damaged.length && { segment_damaged: damaged }),
        ...(unreadable.length && { segment_unreadable: unreadable }),
      },
    });
    await this.poll();
    this.pollTimer = setInterval(() => void this.poll().catch((err) => this.deps.log.error({ err }, 'relay poll failed')), pollMs);
    this.pollTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    // Deliveries in flight are finished and recorded; the ones only waiting stay in the store for the next start
    // (otherwise a shutdown would wait for the whole backlog to be delivered).
    this.waiting.length = 0;
    this.queued.clear();
    this.handoffs.clear();
    this.handoffBytes = 0;
    await this.idle();
    this.downstream?.close();
    this.outbound.close();
  }

  /** Resolves when nothing is being delivered. */
  idle(): Promise<void> {
    if (this.active === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * Stops delivering a message: false when an attempt is already under way (its outcome will be recorded; the
   * caller tries again after it). The message's rows then say what becomes of it.
   */
  withhold(id: string): boolean {
    if (this.inflight.has(id)) return false;
    this.withheld.add(id);
    if (this.withheld.size > 100_000) this.withheld.delete(this.withheld.values().next().value as string);
    return true;
  }

  submit(id: string, handoff?: Handoff): void {
    if (this.stopped || this.queued.has(id) || this.inflight.has(id) || this.withheld.has(id)) return;
    if (handoff && this.handoffBytes + handoffSize(handoff) <= HANDOFF_BYTES) {
      this.handoffs.set(id, handoff);
      this.handoffBytes += handoffSize(handoff);
    }
    this.queued.add(id);
    this.waiting.push(id);
    this.pump();
  }

  /** Picks up recipients that are due (retries, and those another process set due with `queue retry`). */
  async poll(): Promise<void> {
    const rows = await this.deps.db
      .selectFrom('recipients')
      .select('msg_id')
      .distinct()
      .where('status', 'in', OPEN)
      .where('next_attempt_at', '<=', Date.now())
      .limit(2000)
      .execute();
    for (const r of rows) this.submit(r.msg_id);
  }

  private pump(): void {
    const limit = this.deps.config.relay.concurrency;
    while (!this.stopped && this.active < limit && this.waiting.length) {
      const id = this.waiting.shift() as string;
      this.queued.delete(id);
      this.inflight.add(id);
      this.active++;
      this.process(id)
        .catch((err) => this.deps.log.error({ err, msg_id: id }, 'delivery run failed'))
        .finally(() => {
          this.active--;
          this.inflight.delete(id);
          this.pump();
          if (this.active === 0 && this.waiting.length === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  private async process(id: string): Promise<void> {
    const { db, spool, config, emit, log } = this.deps;
    const now = Date.now();
    const handoff = this.handoffs.get(id);
    if (handoff) {
      this.handoffs.delete(id);
      this.handoffBytes -= handoffSize(handoff);
    }
    if (this.withheld.has(id)) return;
    const [msg, rcpts] = handoff
      ? [handoff.message, handoff.recipients]
      : await Promise.all([
          db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst(),
          db.selectFrom('recipients').selectAll().where('msg_id', '=', id).execute(),
        ]);
    if (!msg) return;
    const due = rcpts.filter((r) => OPEN.includes(r.status) && r.next_attempt_at <= now + 50);
    if (!due.length) return;
    let raw: Buffer;
    try {
      raw = handoff?.raw ?? (await spool.read(id));
    } catch (err) {
      log.error({ msg_id: id, err: (err as Error).message }, 'spool file missing for open recipients');
      emit('store.error', { msg_id: id, data: { op: 'spool_read', error: (err as Error).message } });
      await this.record(msg, rcpts, due.map((r) => ({ r, o: { kind: 'temp', response: 'spool file unreadable' } as Outcome })), now);
      return;
    }
    // Bare CR/LF never leave Postern, whatever put them into the spool (reliability.md S-09).
    const wire = crlfOnly(raw);
    const groups = new Map<string, Rcpt[]>();
    for (const r of due) {
      const key = `${r.route}|${r.action === 'tag' ? 'tag' : 'plain'}|${r.route === 'outbound' ? domainOf(r.deliver_to) : ''}`;
      const g = groups.get(key) ?? [];
      g.push(r);
      groups.set(key, g);
    }
    const results: { r: Rcpt; o: Outcome }[] = [];
    await Promise.all(
      [...groups.values()].map(async (group) => {
        const first = group[0];
        const tag =
          first.action === 'tag'
            ? { score: msg.score, symbols: JSON.parse(msg.symbols) as { name: string; score: number }[], action: 'tag', subjectPrefix: config.analysis.subject_prefix || undefined }
            : undefined;
        const copy = prepareCopy(wire, config.gateway.hostname, tag, authResultsOf(msg.symbols));
        const t0 = Date.now();
        const { outcomes, host } = await this.deliver(first.route, msg.mail_from, group.map((r) => r.deliver_to), copy);
        for (const r of group) results.push({ r, o: outcomes.get(r.deliver_to) ?? { kind: 'temp', response: 'no outcome' } });
        emit('relay.attempt', {
          msg_id: id,
          data: {
            route: first.route,
            host,
            ms: Date.now() - t0,
            results: group.map((r) => {
              const o = outcomes.get(r.deliver_to);
              return { rcpt: r.rcpt, deliver_to: r.deliver_to, result: o?.kind, response: o?.response };
            }),
          },
        });
      }),
    );
    // The retry schedule and the lifetime count from the end of the attempt, which may have taken minutes.
    await this.record(msg, rcpts, results, Date.now(), raw);
  }

  private async deliver(route: string, from: string, to: string[], copy: Buffer): Promise<{ outcomes: Map<string, Outcome>; host: string }> {
    if (route === 'local') {
      const outcomes = new Map<string, Outcome>();
      for (const addr of to) {
        try {
          const name = await this.deps.maildir.deliver(addr, copy);
          outcomes.set(addr, { kind: 'ok', response: `maildir ${name}` });
        } catch (err) {
          outcomes.set(addr, { kind: 'temp', response: `maildir: ${(err as Error).message}` });
        }
      }
      return { outcomes, host: 'maildir' };
    }
    if (route === 'downstream' && this.downstream) {
      const ds = this.deps.config.relay.downstream!;
      return send(this.downstream, `${ds.host}:${ds.port}`, from, to, copy);
    }
    const { t, host } = await this.outbound.forDomain(domainOf(to[0]));
    return send(t, host, from, to, copy);
  }

  /**
   * Writes the outcomes (with the DSN for permanent failures, in the same group-committed transaction), and only
   * once that is durable removes the spool file if no recipient is left open.
   */
  private async record(msg: Msg, all: Rcpt[], results: { r: Rcpt; o: Outcome }[], now: number, raw?: Buffer): Promise<void> {
    const { config, emit, spool, log } = this.deps;
    const expiresAt = msg.received_at + config.relay.max_queue_lifetime_s * 1000;
    const expired = now >= expiresAt;
    const failed: FailedRecipient[] = [];
    const delivered: string[] = [];
    const deferred: { rcpt: string; next: number; response: string }[] = [];
    const updates: RecipientUpdate[] = results.map(({ r, o }) => {
      const attempts = r.attempts + 1;
      const base = { rcpt: r.rcpt, attempts, next_attempt_at: r.next_attempt_at };
      if (o.kind === 'ok') {
        delivered.push(r.rcpt);
        return { ...base, status: 'delivered', last_error: null };
      }
      if (o.kind === 'perm' || expired) {
        failed.push({
          rcpt: r.rcpt,
          status: o.kind === 'perm' ? (enhancedOf(o.response, 5) ?? '5.0.0') : '4.4.7',
          diagnostic: o.kind === 'perm' ? o.response : `expired after ${attempts} attempts: ${o.response}`,
          action: 'failed',
        });
        return { ...base, status: o.kind === 'perm' ? 'bounced' : 'expired', last_error: o.response };
      }
      // Never wait past the queue lifetime: the attempt at that moment is the last one (RFC 5321 4.5.4.1).
      const next = Math.min(now + retryDelayMs(attempts, config.relay.retry_schedule_s), expiresAt);
      deferred.push({ rcpt: r.rcpt, next, response: o.response });
      return { ...base, status: 'deferred', next_attempt_at: next, last_error: o.response };
    });
    const stillOpen =
      all.some((r) => OPEN.includes(r.status) && !results.some((x) => x.r.rcpt === r.rcpt)) || updates.some((u) => u.status === 'deferred');

    let dsn: OutcomeRecord['dsn'];
    if (failed.length) {
      // RFC 5321 4.5.5 / 6.1: never a report to the null reverse path; nor to one that could not be written as
      // a header or an envelope line (it would only inject lines; reliability.md C-13).
      if (msg.mail_from === '') log.info({ msg_id: msg.id }, 'no DSN for the null sender');
      else if (CONTROL.test(msg.mail_from)) log.error({ msg_id: msg.id }, 'no DSN: reverse path contains control characters');
      else dsn = await this.writeDsn(msg, failed, now, raw);
    }
    // On failure this throws before the spool file is touched: the recipients are tried again (D-10 ordering).
    await this.outcomes.write({ msgId: msg.id, now, updates, done: !stillOpen, dsn });
    if (!stillOpen) await spool.remove(msg.id);
    if (dsn) this.submit(dsn.message.id);
    if (delivered.length) emit('relay.delivered', { msg_id: msg.id, data: { rcpts: delivered } });
    if (deferred.length) emit('relay.deferred', { msg_id: msg.id, data: { rcpts: deferred } });
    if (failed.length) emit('relay.bounced', { msg_id: msg.id, data: { rcpts: failed, dsn: dsn?.message.id ?? null } });
  }

  /** Builds the DSN and writes its spool file; its rows are committed together with the failure. */
  private async writeDsn(msg: Msg, failed: FailedRecipient[], now: number, raw?: Buffer): Promise<OutcomeRecord['dsn']> {
    const { config, spool } = this.deps;
    const original = raw ?? (await spool.read(msg.id).catch(() => Buffer.alloc(0)));
    const end = original.indexOf('\r\n\r\n');
    const id = queueId();
    const text = buildDsn({
      hostname: config.gateway.hostname,
      to: msg.mail_from,
      queueId: msg.id,
      arrivalDate: new Date(msg.received_at),
      failed,
      originalHeaders: original.subarray(0, end < 0 ? Math.min(original.length, 64 * 1024) : end + 2).toString('utf8'),
    });
    await spool.write(id, text);
    return dsnQueueEntry({ id, forMsg: msg.id, sender: msg.mail_from, size: text.length, route: routeFor(msg.mail_from, config), now });
  }
}

const CONTROL = /[\x00-\x1f\x7f]/;
