// Retroactive action on the copies of a declared outbreak: every cluster policy that holds or refuses (the outbreak
// rule's, or an admin's "bad") is swept, at once when it appears and then every second while it lasts, so copies that
// arrived before the gateways knew are found too. For each copy the data matrix knows of:
// - still in the spool (queued, deferred): the relay is told to leave it, and it is quarantined instead;
// - delivered to the built-in mailbox store: its file is taken out of the Maildir and quarantined;
// - delivered downstream: pulled back over IMAP with the master user (retro/imap.ts) and quarantined;
// - relayed out again (the outbound path): listed with the external recipients it reached; still queued, stopped.
// Each act is an event with the cluster; recipients and the admin are told once per sweep.
import fsp from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Emit } from '../core/events.ts';
import type { DB, MessagesTable, RecipientsTable } from '../store/schema.ts';
import type { Spool } from '../gateway/spool.ts';
import type { BlobStore } from '../quarantine/blobs.ts';
import type { MaildirStore } from '../relay/maildir.ts';
import type { LivePolicy, PolicyTable } from '../policy/live.ts';
import { enqueue } from '../quarantine/enqueue.ts';
import { digestFrom } from '../quarantine/digest.ts';
import { pullBackMany, type PullbackResult } from './imap.ts';

type Rcpt = Selectable<RecipientsTable>;
type Msg = Selectable<MessagesTable>;

export interface RetroDeps {
  db: Kysely<DB>;
  config: Config;
  log: Logger;
  emit: Emit;
  spool: Spool;
  blobs: BlobStore;
  maildir: MaildirStore;
  policies: PolicyTable;
  durable: () => Promise<void>;
  /**
   * Tells the relay to leave a message alone (it is being quarantined); false when it is being delivered right now
   * (the next sweep finds it delivered and pulls it back).
   */
  withhold(msgId: string): boolean;
  submit?(msgId: string): void;
}

/** What one sweep of one cluster did. */
export interface SweepResult {
  cluster: number;
  quarantined: number;
  pulledBack: number;
  failed: number;
  forwarded: number;
  /** Copies delivered downstream with no way to pull them back (outbreak.pullback.host is not set). */
  unreachable: number;
}

const OPEN = ['queued', 'deferred'];
/** A copy that could not be pulled back is tried again after this long. */
const RETRY_MS = 30_000;
const FULL_MS = 60_000;

export class Retro {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  /** msg_id.rcpt → when to try again a copy that failed. */
  private readonly failedAt = new Map<string, number>();
  /** Copies reported once and not to be reported again: forwarded ones, unreachable ones. */
  private readonly reported = new Set<string>();
  /** Clusters the admin was told about. */
  private readonly announced = new Set<number>();
  /** Per cluster, when its members were last all read: between full reads only the latest members are. */
  private readonly fullAt = new Map<number, number>();
  private stopped = false;

  constructor(private readonly deps: RetroDeps) {}

  /** Sweeps every second, and at once when asked (a policy change). */
  start(intervalMs = 1000): void {
    this.timer = setInterval(() => this.kick(), intervalMs);
    this.timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Runs a sweep of every active cluster policy unless one is running. */
  kick(): void {
    if (this.running || this.stopped) return;
    this.running = this.sweepAll()
      .catch((err: Error) => this.deps.log.error({ err: err.message }, 'retroactive sweep failed; trying again'))
      .finally(() => (this.running = null));
  }

  /** One sweep of every cluster a holding or refusing policy is on; returns what each did. */
  async sweepAll(now = Date.now()): Promise<SweepResult[]> {
    if (!this.deps.config.outbreak.retro) return [];
    const out: SweepResult[] = [];
    for (const [cluster, policy] of this.activeClusters(now)) out.push(await this.sweep(cluster, policy, now));
    return out;
  }

  private activeClusters(now: number): Map<number, LivePolicy> {
    const m = new Map<number, LivePolicy>();
    for (const p of this.deps.policies.clusterPolicies(now)) {
      if (p.action === 'allow') continue;
      const id = Number(p.target);
      // An admin's "safe" on the cluster wins over the rule's declaration.
      if (this.deps.policies.forCluster(id, now).some((x) => x.action === 'allow')) continue;
      if (!m.has(id)) m.set(id, p);
    }
    return m;
  }

  async sweep(cluster: number, policy: LivePolicy, now = Date.now()): Promise<SweepResult> {
    const { db } = this.deps;
    const res: SweepResult = { cluster, quarantined: 0, pulledBack: 0, failed: 0, forwarded: 0, unreachable: 0 };
    // All members once a minute (a copy in flight when last seen, a failure due again), the last minute's otherwise:
    // a campaign of thousands is not read in full every second.
    const full = now - (this.fullAt.get(cluster) ?? 0) >= FULL_MS;
    if (full) this.fullAt.set(cluster, now);
    let q = db.selectFrom('similarity_entries').select('id').where('cluster', '=', cluster);
    if (!full) q = q.where('ts', '>=', now - FULL_MS);
    const members = (await q.execute()).map((r) => r.id);
    if (!members.length) return res;
    const rows: Rcpt[] = [];
    for (let i = 0; i < members.length; i += 500) {
      rows.push(
        ...(await db
          .selectFrom('recipients')
          .selectAll()
          .where('msg_id', 'in', members.slice(i, i + 500))
          .where('status', 'in', [...OPEN, 'delivered'])
          .execute()),
      );
    }
    const todo = rows.filter((r) => {
      const key = `${r.msg_id}.${r.rcpt}`;
      return !this.reported.has(key) && (this.failedAt.get(key) ?? 0) <= now;
    });
    if (!todo.length) return res;
    const msgs = new Map<string, Msg>();
    for (const id of new Set(todo.map((r) => r.msg_id))) {
      const m = await db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
      if (m) msgs.set(id, m);
    }
    const pulled: { rcpt: string; msg: Msg }[] = [];
    // Copies the relay still holds first: they must not leave while the others are pulled back.
    for (const r of todo.filter((x) => OPEN.includes(x.status))) {
      const msg = msgs.get(r.msg_id);
      if (!msg) continue;
      try {
        if (await this.quarantineQueued(cluster, policy, msg, r)) res.quarantined++;
      } catch (err) {
        this.fail(cluster, r, err as Error, now);
        res.failed++;
      }
    }
    const delivered = todo.filter((x) => x.status === 'delivered');
    for (const r of delivered.filter((x) => x.route === 'outbound')) {
      const msg = msgs.get(r.msg_id);
      if (!msg) continue;
      this.reported.add(`${r.msg_id}.${r.rcpt}`);
      res.forwarded++;
      this.deps.emit('retro.forwarded', { msg_id: r.msg_id, data: { cluster, to: [r.deliver_to], from: msg.mail_from, subject: msg.subject, delivered_at: r.updated_at } });
    }
    for (const r of delivered.filter((x) => x.route === 'local')) {
      const msg = msgs.get(r.msg_id);
      if (!msg) continue;
      try {
        if (await this.pullLocal(cluster, policy, msg, r)) {
          res.pulledBack++;
          pulled.push({ rcpt: r.rcpt, msg });
        }
      } catch (err) {
        this.fail(cluster, r, err as Error, now);
        res.failed++;
      }
    }
    const downstream = delivered.filter((x) => x.route === 'downstream');
    if (downstream.length && !this.deps.config.outbreak.pullback.host) {
      for (const r of downstream) {
        this.reported.add(`${r.msg_id}.${r.rcpt}`);
        res.unreachable++;
        this.deps.emit('retro.failed', { msg_id: r.msg_id, data: { cluster, rcpt: r.rcpt, error: 'delivered downstream and outbreak.pullback.host is not set: the copy stays in the mailbox' } });
      }
    } else if (downstream.length) {
      // One IMAP login per mailbox, for all of its copies.
      const byUser = new Map<string, Rcpt[]>();
      for (const r of downstream) byUser.set(r.deliver_to, [...(byUser.get(r.deliver_to) ?? []), r]);
      for (const [user, list] of byUser) {
        const withId = list.filter((r) => msgs.get(r.msg_id)?.message_id);
        for (const r of list.filter((x) => !withId.includes(x))) {
          this.reported.add(`${r.msg_id}.${r.rcpt}`);
          res.unreachable++;
          this.deps.emit('retro.failed', { msg_id: r.msg_id, data: { cluster, rcpt: r.rcpt, error: 'the message has no Message-ID to find it by' } });
        }
        if (!withId.length) continue;
        let found: Map<string, PullbackResult>;
        try {
          found = await pullBackMany(this.deps.config.outbreak.pullback, user, withId.map((r) => msgs.get(r.msg_id)?.message_id as string), { log: this.deps.log });
        } catch (err) {
          for (const r of withId) this.fail(cluster, r, err as Error, now);
          res.failed += withId.length;
          continue;
        }
        for (const r of withId) {
          const msg = msgs.get(r.msg_id) as Msg;
          const result = found.get(msg.message_id as string);
          try {
            await this.recordPulled(cluster, policy, msg, r, result?.raw ?? null, { where: 'imap', outcome: result?.outcome ?? 'not_found', mailbox: result?.found[0]?.mailbox });
            res.pulledBack++;
            if (result?.raw) pulled.push({ rcpt: r.rcpt, msg });
          } catch (err) {
            this.fail(cluster, r, err as Error, now);
            res.failed++;
          }
        }
      }
    }
    if (res.quarantined || res.pulledBack || res.forwarded || res.unreachable) await this.notify(cluster, policy, res, pulled);
    return res;
  }

  private fail(cluster: number, r: Rcpt, err: Error, now: number): void {
    this.failedAt.set(`${r.msg_id}.${r.rcpt}`, now + RETRY_MS);
    this.deps.log.warn({ cluster, msg_id: r.msg_id, rcpt: r.rcpt, err: err.message }, 'retroactive action failed; trying again');
    this.deps.emit('retro.failed', { msg_id: r.msg_id, data: { cluster, rcpt: r.rcpt, error: err.message, retry_in_s: RETRY_MS / 1000 } });
  }

  /** A copy the relay has not delivered yet: held in quarantine from the spool file, the relay told to leave it. */
  private async quarantineQueued(cluster: number, policy: LivePolicy, msg: Msg, r: Rcpt): Promise<boolean> {
    if (!this.deps.withhold(msg.id)) return false;
    const raw = await this.deps.spool.read(msg.id);
    const blob = await this.deps.blobs.put(raw);
    const now = Date.now();
    const changed = await this.deps.db.transaction().execute(async (trx) => {
      const u = await trx
        .updateTable('recipients')
        .set({ status: 'quarantined', route: 'quarantine', updated_at: now, last_error: null })
        .where('msg_id', '=', msg.id)
        .where('rcpt', '=', r.rcpt)
        .where('status', 'in', OPEN)
        .executeTakeFirst();
      if (Number(u.numUpdatedRows) === 0) return false;
      await trx.insertInto('quarantine').values(this.entry(cluster, policy, msg, r, blob, raw.length, 'held from the spool')).execute();
      const open = await trx.selectFrom('recipients').select('rcpt').where('msg_id', '=', msg.id).where('status', 'in', OPEN).execute();
      if (!open.length) await trx.updateTable('messages').set({ status: 'done' }).where('id', '=', msg.id).execute();
      return true;
    });
    // Delivered meanwhile (it was in flight): the next sweep pulls it back instead.
    if (!changed) return false;
    await this.deps.durable();
    const open = await this.deps.db.selectFrom('recipients').select('rcpt').where('msg_id', '=', msg.id).where('status', 'in', OPEN).execute();
    if (!open.length) await this.deps.spool.remove(msg.id).catch(() => undefined);
    this.deps.emit('retro.quarantined', { msg_id: msg.id, data: { cluster, rcpt: r.rcpt, policy: policy.id } });
    return true;
  }

  /** A copy in the built-in mailbox store: found by the queue id in Postern's own Received field, moved to quarantine. */
  private async pullLocal(cluster: number, policy: LivePolicy, msg: Msg, r: Rcpt): Promise<boolean> {
    const marker = Buffer.from(` id ${msg.id}`, 'latin1');
    let hit: { file: string; raw: Buffer } | null = null;
    for (const file of await this.deps.maildir.list(r.deliver_to)) {
      const raw = await fsp.readFile(file).catch(() => null);
      if (!raw) continue;
      const end = raw.indexOf('\r\n\r\n');
      const head = raw.subarray(0, end < 0 ? raw.length : end);
      const i = head.indexOf(marker);
      // The id ends the token: "id 1A2B…" followed by ";", a space or a line end, never a longer id.
      if (i >= 0 && !/[A-Za-z0-9]/.test(String.fromCharCode(head[i + marker.length] ?? 0x3b))) {
        hit = { file, raw };
        break;
      }
    }
    await this.recordPulled(cluster, policy, msg, r, hit?.raw ?? null, { where: 'maildir', outcome: hit ? 'deleted' : 'not_found' }, async () => {
      if (hit) await fsp.unlink(hit.file);
    });
    return true;
  }

  /** Keeps the pulled-back copy in quarantine and marks the recipient pulled back; `remove` then takes it away. */
  private async recordPulled(
    cluster: number,
    policy: LivePolicy,
    msg: Msg,
    r: Rcpt,
    raw: Buffer | null,
    how: { where: 'maildir' | 'imap'; outcome: string; mailbox?: string },
    remove?: () => Promise<void>,
  ): Promise<void> {
    const now = Date.now();
    const blob = raw ? await this.deps.blobs.put(raw) : null;
    await this.deps.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('recipients')
        .set({ status: 'pulled_back', updated_at: now, last_error: raw ? null : 'not found in the mailbox (already deleted or moved)' })
        .where('msg_id', '=', msg.id)
        .where('rcpt', '=', r.rcpt)
        .execute();
      if (blob && raw) {
        await trx
          .insertInto('quarantine')
          .values(this.entry(cluster, policy, msg, r, blob, raw.length, how.where === 'imap' ? 'pulled back from the mailbox server' : 'pulled back from the mailbox'))
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      }
    });
    await this.deps.durable();
    await remove?.();
    this.deps.emit('retro.pulled_back', {
      msg_id: msg.id,
      data: { cluster, rcpt: r.rcpt, where: how.where, outcome: how.outcome, ...(how.mailbox && { mailbox: how.mailbox }), delivered_at: r.updated_at, policy: policy.id },
    });
  }

  private entry(cluster: number, policy: LivePolicy, msg: Msg, r: Rcpt, blob: string, size: number, how: string) {
    const now = Date.now();
    return {
      id: `${msg.id}.${r.rcpt}`,
      msg_id: msg.id,
      rcpt: r.rcpt,
      blob,
      reason: `outbreak: cluster ${cluster}, ${how}`,
      score: msg.score,
      symbols: msg.symbols,
      sender: msg.mail_from,
      subject: msg.subject,
      size,
      created_at: now,
      expires_at: now + this.deps.config.quarantine.retention_days * 86_400_000,
      status: 'held',
      policy: JSON.stringify([policy.id]),
      acted_at: null,
      acted_by: null,
    };
  }

  /** Tells each recipient whose copy was taken back, and the admin what the sweep did. */
  private async notify(cluster: number, policy: LivePolicy, res: SweepResult, pulled: { rcpt: string; msg: Msg }[]): Promise<void> {
    const { config } = this.deps;
    const sent: string[] = [];
    if (config.outbreak.notify_recipients) {
      const byRcpt = new Map<string, Msg[]>();
      for (const p of pulled) byRcpt.set(p.rcpt, [...(byRcpt.get(p.rcpt) ?? []), p.msg]);
      for (const [rcpt, list] of byRcpt) {
        const lines = list.map((m) => `- "${m.subject ?? '(no subject)'}" from ${m.mail_from || '<>'}, received ${new Date(m.received_at).toISOString()}`);
        const text = `A message delivered to you was removed from your mailbox and is held in quarantine: it belongs to a mail outbreak (a campaign of similar messages from many sources) found after it was delivered.\n\n${lines.join('\n')}\n\nIf you opened it, do not follow its links or open its attachments, and tell your administrator. If you believe it is legitimate, ask your administrator to release it (cluster ${cluster}).\n`;
        if (await this.send(rcpt, `A message was removed from your mailbox (${list.length})`, text, { notice_for: rcpt, cluster })) sent.push(rcpt);
      }
    }
    const admin = config.outbreak.notify_admin || `postmaster@${config.gateway.domains[0] ?? config.gateway.hostname}`;
    const first = !this.announced.has(cluster);
    this.announced.add(cluster);
    const text = `${first ? `Cluster ${cluster} was declared an outbreak: ${policy.reason}.` : `More copies of outbreak cluster ${cluster} were found.`}\n\nThis sweep: ${res.quarantined} held from the spool, ${res.pulledBack} pulled back from mailboxes, ${res.forwarded} had already been forwarded outside, ${res.unreachable} could not be reached, ${res.failed} failed (tried again).\n\nDetails: postern clusters show ${cluster}\n`;
    if (await this.send(admin, `Postern: outbreak cluster ${cluster}`, text, { notice_for: 'admin', cluster })) sent.push(admin);
    if (sent.length) this.deps.emit('retro.notified', { data: { cluster, to: sent } });
  }

  private async send(rcpt: string, subject: string, text: string, verdict: Record<string, unknown>): Promise<boolean> {
    const { config } = this.deps;
    try {
      const raw = await new MailComposer({
        from: digestFrom(config),
        to: rcpt,
        subject,
        text,
        messageId: `<outbreak.${randomUUID()}@${config.gateway.hostname}>`,
        headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
      })
        .compile()
        .build();
      const id = await enqueue(this.deps, { raw, mailFrom: '', rcpt, subject, messageId: null, verdict, reason: `outbreak notice (cluster ${String(verdict.cluster)})` });
      if (id) this.deps.submit?.(id);
      return Boolean(id);
    } catch (err) {
      this.deps.log.warn({ rcpt, err: (err as Error).message }, 'outbreak notice not sent');
      return false;
    }
  }
}
