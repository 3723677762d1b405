// The shapes the center's API answers with, as far as the pages read them.

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  limit: number;
}

export interface EventRow {
  id: number;
  ts: number;
  type: string;
  ip: string | null;
  conn_id: string | null;
  msg_id: string | null;
  data: Record<string, unknown>;
}

export interface MessageItem {
  id: string;
  message_id: string | null;
  received_at: number;
  conn_id: string | null;
  client_ip: string | null;
  helo: string | null;
  mail_from: string;
  subject: string | null;
  size: number;
  score: number;
  status: string;
  recipients: { rcpt: string; action: string; status: string; deliver_to: string }[];
}

export interface SymbolHit {
  name: string;
  check?: string;
  score: number;
  weight?: number;
  detail?: string[] | string;
}

export interface StoryRecipient {
  rcpt: string;
  action: string;
  status: string;
  route?: string;
  deliver_to?: string;
  attempts?: number;
  last_error?: string | null;
  reasons?: unknown[];
  policies: string[];
}

export interface Story {
  id: string | null;
  refused: boolean;
  message?: Record<string, unknown> & Partial<MessageItem>;
  connection: { conn_id: string | null; ip: string | null; helo: string | null; events: EventRow[] };
  symbols?: SymbolHit[];
  verdict?: unknown;
  recipients?: StoryRecipient[];
  deliveries?: EventRow[];
  quarantine?: { copies: QuarantineEntry[]; actions: EventRow[] };
  retro?: EventRow[];
  policies?: PolicyRow[];
  events: EventRow[];
}

export interface QuarantineEntry {
  id: string;
  msg_id: string;
  rcpt: string;
  sender: string;
  subject: string | null;
  reason: string;
  score: number;
  symbols: { name: string; score: number; detail?: string }[];
  size: number;
  created_at: number;
  expires_at: number;
  status: string;
  acted_at: number | null;
  acted_by: string | null;
}

export interface PolicyRow {
  id: string;
  target_kind: string;
  target: string;
  action: string;
  params: Record<string, unknown>;
  reason: string;
  evidence: Record<string, unknown>;
  created_at: number;
  expires_at: number | null;
  pinned: boolean;
  source: string;
  state: 'active' | 'expired';
}

export interface ClusterSummary {
  id: number;
  first_seen: number;
  last_seen: number;
  members: number;
  ips: number;
  sender_domains: number;
  recipients: number;
  suspicious: number;
  state: string;
  declared_at: number | null;
  declared_by: string | null;
  subject: string | null;
  updated_at: number;
  verdict: string | null;
  policy: string | null;
}

export interface ClusterDetail {
  cluster: ClusterSummary;
  policies: PolicyRow[];
  members: {
    id: string;
    ts: number;
    ip: string | null;
    sender: string | null;
    subject: string | null;
    message_id: string | null;
    suspicious: boolean;
    recipients: { rcpt: string; action: string; status: string; route: string; retro: EventRow | null }[];
    forwarded: string[];
  }[];
  membersTotal: number;
  events: EventRow[];
  forwardedTo: string[];
}

export interface AuditUser {
  pattern: string;
  source: 'config' | 'store';
  added_by: string | null;
  added_at: number | null;
}

export interface MailboxItem {
  user: string;
  last_seen: number;
  succeeded: number;
  failed: number;
  last_ip: string | null;
  audited: boolean;
}

export interface MailboxActivity {
  user: string;
  since: string;
  audited: boolean;
  audited_by: string[];
  known_logins: { ip: string; first_ok: number; last_ok: number; logins: number }[];
  auth: { id: number; ts: number; ip: string | null; protocol: string | null; outcome: 'succeeded' | 'failed' | 'refused'; refused_by?: string }[];
  attacks: {
    policies: PolicyRow[];
    findings: { id: number; ts: number; detector: string; reason: string; policy: string | null; target: string }[];
    failed_ips: string[];
  };
  audit: { sessions: { session: string; protocol: string; ip: string | null; started_at: number; ended_at: number | null; lines: { ts: number; text: string }[] }[]; truncated: boolean };
}

export interface Alert {
  id: number;
  ts: number;
  type: string;
  severity: 'critical' | 'high' | 'medium' | 'low';
  summary: string;
  ip: string | null;
  data: Record<string, unknown>;
}

/** One key of GET /api/v1/settings; secrets come as "(set)", "(from env NAME)" or "(not set)". */
export interface SettingKey {
  key: string;
  value: unknown;
  default: unknown;
  changed: boolean;
  description: string;
  type: string;
  secret?: boolean;
}

export interface Settings {
  config_file: string | null;
  data_dir: string | null;
  sections: { name: string; keys: SettingKey[] }[];
}

/** Who changed a detector setting at run time, and when. */
export interface SettingOverride {
  set_by: string;
  set_at: number;
}

export interface DetectorSetting extends SettingKey {
  file_value: unknown;
  override: SettingOverride | null;
  editable: boolean;
}

export interface DetectorInfo {
  name: string;
  summary: string;
  switch: string;
  enabled: boolean;
  switch_editable: boolean;
  switch_override: SettingOverride | null;
  thresholds: DetectorSetting[];
  policies_24h: number;
}

export interface Detectors {
  analyzer_enabled: boolean;
  items: DetectorInfo[];
}

/** An active policy acting on a source (GET /api/v1/sources). */
export interface SourcePolicy {
  id: string;
  action: string;
  target_kind: string;
  target: string;
  expires_at: number | null;
  for: string | null;
}

/** One source of GET /api/v1/sources: an address, network, HELO name, sender domain or sender, with its counts. */
export interface SourceItem {
  kind: 'address' | 'network' | 'helo' | 'domain' | 'sender';
  key: string;
  /** The address's /24 or /64; null for the other kinds. */
  network: string | null;
  first_seen: number;
  last_seen: number;
  connections: number;
  messages: number;
  recipients: number;
  unknown_recipients: number;
  refused: number;
  quarantined: number;
  delivered: number;
  refused_share: number;
  quarantined_share: number;
  unknown_share: number;
  score_avg: number | null;
  policies: SourcePolicy[];
}

/** One account of GET /api/v1/accounts (admins only): never its password. */
export interface AccountItem {
  name: string;
  role: 'admin' | 'auditor' | 'user';
  addresses: string[];
  created_at: number;
  disabled: boolean;
  tokens: number;
  sessions: number;
}

/** One API token of an account: its id and label, never the secret. */
export interface TokenItem {
  id: string;
  account: string;
  label: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
}

/** One waiting recipient of GET /api/v1/queue: queued (not tried yet) or deferred (waiting for its next attempt). */
export interface QueueItem {
  queue_id: string;
  rcpt: string;
  deliver_to: string;
  route: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  message_id: string | null;
  mail_from: string;
  subject: string | null;
  size: number;
  received_at: number;
  age_ms: number;
}

/** GET /api/v1/queue: a page of waiting recipients, and the whole queue in numbers. */
export interface QueuePage extends Page<QueueItem> {
  summary: { recipients: number; messages: number; with_errors: number; oldest_received_at: number | null };
}
