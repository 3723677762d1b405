// Table types of the index and event store, shared by the SQLite and PostgreSQL backends.
import type { Generated } from 'kysely';

export interface MessagesTable {
  id: string;
  message_id: string | null;
  received_at: number;
  conn_id: string | null;
  client_ip: string | null;
  helo: string | null;
  mail_from: string;
  size: number;
  subject: string | null;
  score: number;
  /** JSON: SymbolHit[] */
  symbols: string;
  /** JSON: AppliedPolicy[] and reasons behind the message-level action */
  verdict: string;
  /** 'queued' while any recipient is in the spool, 'done' once none is. */
  status: string;
}

export interface RecipientsTable {
  msg_id: string;
  rcpt: string;
  /** Action kind decided for this recipient. */
  action: string;
  /** JSON: Reason[] */
  reasons: string;
  /**
   * queued | delivered | deferred | bounced | expired | quarantined | released | pulled_back (an outbreak's copy
   * taken back out of the mailbox after delivery, retro/)
   */
  status: string;
  /** downstream | local | outbound | quarantine */
  route: string;
  /** Address the copy goes to (differs from rcpt for redirect). */
  deliver_to: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  updated_at: number;
}

export interface EventsTable {
  id: Generated<number>;
  ts: number;
  type: string;
  ip: string | null;
  conn_id: string | null;
  msg_id: string | null;
  data: string;
}

export interface PoliciesTable {
  id: string;
  target_kind: string;
  target: string;
  action: string;
  params: string;
  reason: string;
  evidence: string;
  created_at: number;
  expires_at: number | null;
  pinned: number;
  source: string;
}

export interface QuarantineTable {
  id: string;
  msg_id: string;
  rcpt: string;
  blob: string;
  reason: string;
  score: number;
  symbols: string;
  sender: string;
  subject: string | null;
  size: number;
  created_at: number;
  expires_at: number;
  /** held | released | deleted | expired */
  status: string;
  /** JSON: ids of the live policies that applied to this recipient's decision. */
  policy: string;
  /** When the copy was released, deleted or expired, and by whom ("cli:root", "link", "admin:NAME", "purge"). */
  acted_at: number | null;
  acted_by: string | null;
}

/** Single-use quarantine link tokens that were spent (release, delete), kept until the token would have expired. */
export interface QuarantineTokensTable {
  /** The token's nonce. */
  nonce: string;
  action: string;
  quarantine_id: string;
  used_at: number;
  expires_at: number;
}

/** When each recipient was last sent a quarantine digest. */
export interface DigestStateTable {
  rcpt: string;
  last_sent_at: number;
  last_count: number;
}

/** Pairs of (internal sender, external recipient) learned from outbound mail: the organisation's correspondents. */
export interface CorrespondentsTable {
  internal: string;
  external: string;
  messages: number;
  first_seen: number;
  last_seen: number;
}

/** Message-IDs of outbound mail, so that a reply to one can be recognised (In-Reply-To, References). */
export interface SentMessagesTable {
  message_id: string;
  sender: string;
  recipients: string;
  sent_at: number;
}

/** Learned token counts of the statistical classifier (analysis/bayes). */
export interface BayesTokensTable {
  token: string;
  spam: number;
  ham: number;
}

/** One row per learned message, by digest: learning it again in the same class changes nothing. */
export interface BayesLearnedTable {
  digest: string;
  /** 'spam' | 'ham' */
  class: string;
  learned_at: number;
}

/** The single row (id 1) of message counts and the model version, bumped by every learning commit. */
export interface BayesStateTable {
  id: number;
  spam_messages: number;
  ham_messages: number;
  version: number;
  updated_at: number;
}

/**
 * What the data matrix knows of one source, kept current by the trend analyzer: kind is ip, net (/24 or /64),
 * helo, sender_domain or sender.
 */
export interface SourceStatsTable {
  kind: string;
  key: string;
  first_seen: number;
  last_seen: number;
  connections: number;
  messages: number;
  recipients: number;
  unknown_recipients: number;
  /** Messages or recipients refused (5xx/4xx) at RCPT or DATA. */
  refused: number;
  quarantined: number;
  /** Recipients delivered downstream. */
  delivered: number;
  protocol_errors: number;
  score_sum: number;
  score_n: number;
  /** JSON: counts of message scores by bucket: "<0", "0-2", "2-5", "5-8", "8-15", ">=15" */
  score_hist: string;
  /** JSON: count of each action taken on recipients (accept, tag, quarantine, redirect, defer, reject) */
  actions: string;
}

/** The analyzer's place in the event stream: the id of the last event it has applied. */
export interface AnalyzerStateTable {
  id: number;
  last_event_id: number;
  updated_at: number;
}

/** Hourly aggregate of events deleted for age: how many of each type, from how many addresses. */
export interface EventRollupsTable {
  /** Start of the hour, ms since the epoch. */
  hour: number;
  type: string;
  count: number;
  ips: number;
}

/**
 * Addresses each mailbox user logged in from successfully (the monitor's auth.succeeded events, folded by the
 * trend analyzer): what a `protect` policy lets in. Kept monitor.known_logins.retention_days after the last login.
 */
export interface MailboxLoginsTable {
  user: string;
  ip: string;
  first_ok: number;
  last_ok: number;
  logins: number;
}

/**
 * One message of the similarity index's window (similarity/store.ts): its fingerprint, facts and cluster, written as
 * it is indexed, so a restart rebuilds the window. Rows older than the window are deleted.
 */
export interface SimilarityEntriesTable {
  id: string;
  ts: number;
  /** Cluster id; rewritten when the cluster is merged into another. */
  cluster: number;
  /** JSON: Fingerprint */
  fingerprint: string;
  /** JSON: EntryFacts */
  facts: string;
}

/**
 * A cluster of the similarity index as the outbreak detector last saw it (trends/detectors/outbreak.ts): written
 * when its counts change, read by `postern clusters` and the API. The index in memory is the live truth; this row
 * is its summary. An admin's verdict on a cluster is a policy (target_kind 'cluster'), not a column here.
 */
export interface ClustersTable {
  id: number;
  first_seen: number;
  last_seen: number;
  /** Members in the window, distinct client addresses, distinct sender domains, recipients over all members. */
  members: number;
  ips: number;
  sender_domains: number;
  recipients: number;
  /** Members the characteristic checks called suspicious. */
  suspicious: number;
  /** 'watching' until the outbreak rule (or an admin) declares it, then 'outbreak'; 'safe' when an admin said so. */
  state: string;
  declared_at: number | null;
  /** Who declared it: 'outbreak-rule' or the admin's name. */
  declared_by: string | null;
  /** Subject of the first member (for lists). */
  subject: string | null;
  updated_at: number;
}

/** A person who signs in to the center (center/auth/accounts.ts); `postern user` manages them. */
export interface AccountsTable {
  name: string;
  /** admin | auditor | user */
  role: string;
  /** argon2id, PHC string. */
  password_hash: string;
  /** JSON: string[], the mail addresses whose quarantine a user account sees. */
  addresses: string;
  created_at: number;
  /** 1: no sign-in, no token works. */
  disabled: number;
}

/** An account's API token; only its SHA-256 is kept, the token itself is shown once. */
export interface AccountTokensTable {
  id: string;
  account: string;
  token_hash: string;
  label: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
}

/** A signed-in browser or client; the id is the SHA-256 of the cookie's value. */
export interface WebSessionsTable {
  id: string;
  account: string;
  created_at: number;
  /** Idle expiry, pushed forward as the session is used. */
  expires_at: number;
  csrf: string;
}

/**
 * A mailbox user audited through the center or `postern audit users` (monitor/audit/users.ts), besides the config's
 * monitor.audit.users: an address, *@domain or *, lower case.
 */
export interface AuditUsersTable {
  pattern: string;
  /** Who added it: "api", "ROLE:NAME", or "cli". */
  added_by: string;
  added_at: number;
}

/** A detector setting changed through the center or `postern detectors` (config/overrides.ts); beats the file's. */
export interface SettingsOverridesTable {
  /** Dotted config key, e.g. "trends.harvest.ip_unknown". */
  key: string;
  /** The value as JSON. */
  value: string;
  /** Who set it: "ROLE:NAME" or "cli". */
  set_by: string;
  set_at: number;
}

export interface DB {
  messages: MessagesTable;
  recipients: RecipientsTable;
  events: EventsTable;
  policies: PoliciesTable;
  quarantine: QuarantineTable;
  quarantine_tokens: QuarantineTokensTable;
  digest_state: DigestStateTable;
  correspondents: CorrespondentsTable;
  sent_messages: SentMessagesTable;
  bayes_tokens: BayesTokensTable;
  bayes_learned: BayesLearnedTable;
  bayes_state: BayesStateTable;
  source_stats: SourceStatsTable;
  analyzer_state: AnalyzerStateTable;
  event_rollups: EventRollupsTable;
  mailbox_logins: MailboxLoginsTable;
  similarity_entries: SimilarityEntriesTable;
  clusters: ClustersTable;
  accounts: AccountsTable;
  account_tokens: AccountTokensTable;
  web_sessions: WebSessionsTable;
  audit_users: AuditUsersTable;
  settings_overrides: SettingsOverridesTable;
}
