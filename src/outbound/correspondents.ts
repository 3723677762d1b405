// What the organisation's outbound mail teaches: who writes to whom (correspondents), which Message-IDs we sent
// (sent_messages), and, read from the data matrix, which sender domains have sent steadily. recordOutbound writes it;
// the CorrespondentBook keeps it in memory for the business check, which asks on every inbound message.
import type { Kysely } from 'kysely';
import { getDomain } from 'tldts';
import type { DB } from '../store/schema.ts';
import type { CorrespondentHistory, CorrespondentLookup } from '../analysis/check.ts';
import { domainOf, normalizeAddress } from '../core/address.ts';

export interface OutboundRecord {
  /** The internal sender (envelope MAIL FROM). */
  sender: string;
  /** Every envelope recipient; internal ones are not correspondents and are skipped. */
  recipients: readonly string[];
  /** The Message-ID header, with or without angle brackets; none when the message has none. */
  messageId?: string | null;
  now: number;
  /** gateway.domains: recipients in these are colleagues, not correspondents. */
  ourDomains: readonly string[];
}

/** Longest Message-ID kept (without brackets); real ones are well under 100 characters. */
const MAX_MESSAGE_ID = 250;

/** The registrable domain (tldts, public suffix list) of a host name; the name itself when it has none. */
export function registrable(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return getDomain(d, { allowPrivateDomains: false }) ?? d;
}

/** A Message-ID as stored and compared: no angle brackets, no blanks. */
export function bareMessageId(id: string): string {
  return id.trim().replace(/^<|>$/g, '').trim();
}

/**
 * Learns one outbound message: one correspondents row per (sender, external recipient), counted up and stamped with
 * `now`, and its Message-ID in sent_messages. All in one transaction. The book, when given, learns it at once (the
 * same process's next inbound message must not wait for a reload). Returns the external recipients recorded.
 */
export async function recordOutbound(db: Kysely<DB>, r: OutboundRecord, book?: CorrespondentBook): Promise<string[]> {
  const sender = normalizeAddress(r.sender);
  const external = [...new Set(r.recipients.map(normalizeAddress))].filter((a) => a.includes('@') && !r.ourDomains.includes(domainOf(a)));
  if (!sender.includes('@') || !external.length) return [];
  // A Message-ID is an id-left@id-right of printable characters (RFC 5322 3.6.4); anything else is not kept.
  const id = r.messageId ? bareMessageId(r.messageId) : '';
  const messageId = id.length <= MAX_MESSAGE_ID && /^[\x21-\x7e]+@[\x21-\x7e]+$/.test(id) ? id : '';
  await db.transaction().execute(async (trx) => {
    for (const ext of external) {
      await trx
        .insertInto('correspondents')
        .values({ internal: sender, external: ext, messages: 1, first_seen: r.now, last_seen: r.now })
        .onConflict((oc) =>
          oc.columns(['internal', 'external']).doUpdateSet((eb) => ({
            messages: eb('correspondents.messages', '+', 1),
            last_seen: eb.ref('excluded.last_seen'),
          })),
        )
        .execute();
    }
    if (messageId) {
      await trx
        .insertInto('sent_messages')
        .values({ message_id: messageId, sender, recipients: external.join(','), sent_at: r.now })
        .onConflict((oc) => oc.column('message_id').doNothing())
        .execute();
    }
  });
  book?.learn(sender, external, messageId, r.now);
  return external;
}

/** Deletes sent Message-IDs older than the cutoff (epoch ms); returns how many. */
export async function purgeSent(db: Kysely<DB>, cutoff: number): Promise<number> {
  const r = await db.deleteFrom('sent_messages').where('sent_at', '<', cutoff).executeTakeFirst();
  return Number(r.numDeletedRows ?? 0);
}

export interface CorrespondentRow {
  internal: string;
  external: string;
  messages: number;
  first_seen: number;
  last_seen: number;
}

export interface SentRow {
  message_id: string;
  sender: string;
  recipients: readonly string[];
  sent_at: number;
}

export interface SteadyRow {
  domain: string;
  messages: number;
  first_seen: number;
  last_seen: number;
}

interface DomainEntry extends CorrespondentHistory {
  addresses: Set<string>;
}

interface SentEntry {
  sender: string;
  recipients: readonly string[];
  sentAt: number;
}

export interface BookOptions {
  /** Sent Message-IDs older than this are forgotten (outbound.sent_retention_days). */
  sentRetentionMs: number;
  /** A sender domain is steady after this many inbound messages … */
  steadyMinMessages?: number;
  /** … over at least this long … */
  steadyMinAgeMs?: number;
  /** … with at most this share of them held or refused. */
  steadyMaxBadRatio?: number;
}

/** Rows changed this long before the last load are read again: a writer's clock, or a commit still in flight. */
const RELOAD_OVERLAP_MS = 60_000;
const STEADY_RELOAD_MS = 60_000;

/**
 * The learned correspondents in memory: loaded once, then topped up with the rows stamped since the last load (every
 * few seconds; other processes and nodes learn too), and told at once of what this process learns. Lookups are map
 * reads. Memory grows with the pairs and the sent Message-IDs of the retention period (about 200 bytes each).
 */
export class CorrespondentBook implements CorrespondentLookup {
  private pairs = new Map<string, CorrespondentHistory>();
  private byDomain = new Map<string, DomainEntry>();
  private sentIds = new Map<string, SentEntry>();
  private steadyDomains = new Map<string, CorrespondentHistory>();
  private loadedUpTo = 0;
  private steadyReadAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private readonly learners: ((sender: string, external: readonly string[], messageId: string, now: number) => void)[] = [];

  constructor(
    private readonly db: Kysely<DB> | null,
    private readonly opts: BookOptions,
    private readonly onError: (err: Error) => void = () => undefined,
    private readonly clock: () => number = Date.now,
  ) {}

  pair(internal: string, external: string): CorrespondentHistory | undefined {
    return this.pairs.get(`${internal}\n${external}`);
  }

  domain(domain: string): (CorrespondentHistory & { addresses: number }) | undefined {
    const e = this.byDomain.get(domain);
    return e && { messages: e.messages, firstSeen: e.firstSeen, lastSeen: e.lastSeen, addresses: e.addresses.size };
  }

  sent(messageId: string): SentEntry | undefined {
    const e = this.sentIds.get(bareMessageId(messageId));
    if (!e || e.sentAt < this.clock() - this.opts.sentRetentionMs) return undefined;
    return e;
  }

  domains(): Iterable<string> {
    return this.byDomain.keys();
  }

  empty(): boolean {
    return this.byDomain.size === 0 && this.steadyDomains.size === 0;
  }

  /** Inbound history of a sender domain that sent steadily and cleanly (the data matrix's source_stats). */
  steady(domain: string): CorrespondentHistory | undefined {
    return this.steadyDomains.get(domain);
  }

  /** Adds what one outbound message taught (recordOutbound calls it after its commit). */
  learn(sender: string, external: readonly string[], messageId: string, now: number): void {
    for (const ext of external) this.addPair(sender, ext, 1, now, now, true);
    if (messageId) this.sentIds.set(messageId, { sender, recipients: external, sentAt: now });
    for (const fn of this.learners) fn(sender, external, messageId, now);
  }

  /** Told of everything this book is taught by learn() (the analysis threads keep copies of it). */
  onLearn(fn: (sender: string, external: readonly string[], messageId: string, now: number) => void): void {
    this.learners.push(fn);
  }

  /** Fills the book from rows given, not from the store (the offline scan, the fixture cases). */
  seed(rows: { correspondents?: readonly CorrespondentRow[]; sent?: readonly SentRow[]; steady?: readonly SteadyRow[] }): this {
    for (const r of rows.correspondents ?? []) this.addPair(normalizeAddress(r.internal), normalizeAddress(r.external), r.messages, r.first_seen, r.last_seen, true);
    for (const s of rows.sent ?? []) this.sentIds.set(bareMessageId(s.message_id), { sender: s.sender, recipients: s.recipients, sentAt: s.sent_at });
    for (const d of rows.steady ?? []) this.steadyDomains.set(registrable(d.domain), { messages: d.messages, firstSeen: d.first_seen, lastSeen: d.last_seen });
    return this;
  }

  /** Reads the rows stamped since the last load (all of them the first time). */
  load(): Promise<void> {
    this.loading ??= this.readStore().finally(() => (this.loading = undefined));
    return this.loading;
  }

  watch(everyMs: number): void {
    this.stop();
    this.timer = setInterval(() => void this.load().catch((err: Error) => this.onError(err)), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async readStore(): Promise<void> {
    if (!this.db) return;
    const since = this.loadedUpTo ? this.loadedUpTo - RELOAD_OVERLAP_MS : -1;
    const started = this.clock();
    const rows = await this.db.selectFrom('correspondents').selectAll().where('last_seen', '>', since).execute();
    // A reload replaces what it reads: the store's count includes what learn() already added in memory.
    for (const r of rows) this.addPair(r.internal, r.external, Number(r.messages), Number(r.first_seen), Number(r.last_seen), false);
    const cutoff = started - this.opts.sentRetentionMs;
    const sent = await this.db
      .selectFrom('sent_messages')
      .selectAll()
      .where('sent_at', '>', Math.max(since, cutoff))
      .execute();
    for (const s of sent) this.sentIds.set(s.message_id, { sender: s.sender, recipients: s.recipients.split(','), sentAt: Number(s.sent_at) });
    for (const [id, e] of this.sentIds) if (e.sentAt < cutoff) this.sentIds.delete(id);
    // The steady senders change slowly and are read from a larger table: once a minute is enough.
    if (started - this.steadyReadAt >= STEADY_RELOAD_MS) {
      await this.readSteady();
      this.steadyReadAt = started;
    }
    this.loadedUpTo = started;
  }

  private async readSteady(): Promise<void> {
    if (!this.db) return;
    const min = this.opts.steadyMinMessages ?? 5;
    const rows = await this.db
      .selectFrom('source_stats')
      .select(['key', 'first_seen', 'last_seen', 'messages', 'quarantined', 'refused'])
      .where('kind', '=', 'sender_domain')
      .where('messages', '>=', min)
      .execute();
    const maxBad = this.opts.steadyMaxBadRatio ?? 0.1;
    const minAge = this.opts.steadyMinAgeMs ?? 7 * 86_400_000;
    const steady = new Map<string, CorrespondentHistory>();
    for (const r of rows) {
      const messages = Number(r.messages);
      const bad = (Number(r.quarantined) + Number(r.refused)) / messages;
      const firstSeen = Number(r.first_seen);
      const lastSeen = Number(r.last_seen);
      if (bad > maxBad || lastSeen - firstSeen < minAge) continue;
      const d = registrable(r.key);
      const prev = steady.get(d);
      steady.set(d, prev ? { messages: prev.messages + messages, firstSeen: Math.min(prev.firstSeen, firstSeen), lastSeen: Math.max(prev.lastSeen, lastSeen) } : { messages, firstSeen, lastSeen });
    }
    this.steadyDomains = steady;
  }

  /** `add`: counts to add to what is known (learned here); otherwise the store's totals replace it. */
  private addPair(internal: string, external: string, messages: number, firstSeen: number, lastSeen: number, add: boolean): void {
    const key = `${internal}\n${external}`;
    const prev = this.pairs.get(key);
    const next = prev
      ? { messages: add ? prev.messages + messages : Math.max(prev.messages, messages), firstSeen: Math.min(prev.firstSeen, firstSeen), lastSeen: Math.max(prev.lastSeen, lastSeen) }
      : { messages, firstSeen, lastSeen };
    this.pairs.set(key, next);
    const d = registrable(domainOf(external));
    const entry = this.byDomain.get(d) ?? { messages: 0, firstSeen: firstSeen, lastSeen: lastSeen, addresses: new Set<string>() };
    entry.messages += next.messages - (prev?.messages ?? 0);
    entry.firstSeen = Math.min(entry.firstSeen, firstSeen);
    entry.lastSeen = Math.max(entry.lastSeen, lastSeen);
    entry.addresses.add(external);
    this.byDomain.set(d, entry);
  }
}
