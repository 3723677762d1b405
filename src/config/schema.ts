// The one configuration schema: every key, its default and its description live here and nowhere else.
import { z } from 'zod';
import { Cron } from 'croner';

const d = <T extends z.ZodType>(t: T, description: string): T => t.meta({ description }) as T;

/** `host:port`, `[v6]:port` or a bare port. */
const listenAddress = z
  .string()
  .regex(/^(?:\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$|^\d{1,5}$/, 'expected "host:port", e.g. "127.0.0.1:2525"');

const domainName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/, 'expected a domain name such as "example.com"')
  .transform((s) => s.toLowerCase());

const cidr = z
  .string()
  .regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'expected an IP address or CIDR such as "192.0.2.0/24"');

const secret = z.union([z.string(), z.strictObject({ env: z.string().min(1) })]);

const greetPause = z.strictObject({
  trusted_ms: d(z.number().int().min(0).max(30_000).default(0), 'Greeting delay for trusted_networks.'),
  known_good_ms: d(
    z.number().int().min(0).max(30_000).default(0),
    'Greeting delay for sources whose recent mail was accepted and never refused.',
  ),
  unknown_ms: d(
    z.number().int().min(0).max(30_000).default(300),
    'Greeting delay for sources with no history. A client that talks before the greeting is an early talker and is refused.',
  ),
  suspicious_ms: d(
    z.number().int().min(0).max(30_000).default(3_000),
    'Greeting delay for sources with recent refusals or protocol errors.',
  ),
});

const gateway = z.strictObject({
  listen: d(listenAddress.default('127.0.0.1:2525'), 'Address the inbound SMTP listener binds to.'),
  hostname: d(
    z.string().min(1).max(253).default('postern.localhost'),
    'Name used in the greeting, in Received headers and to detect clients that claim to be us.',
  ),
  domains: d(
    z.array(domainName).default(['localhost']),
    'Domains Postern accepts mail for. Mail for any other domain is refused at RCPT (no open relay).',
  ),
  recipients: d(
    z.array(z.string().includes('@')).default([]),
    'Known addresses. When a domain has at least one address listed here, only listed addresses of that domain are accepted; others get 550 5.1.1.',
  ),
  trusted_networks: d(
    z.array(cidr).default([]),
    'Networks whose clients skip the greeting pause. Nothing is trusted for being local unless listed.',
  ),
  workers: d(
    z.number().int().min(1).max(64).default(1),
    'SMTP worker processes sharing the listening socket (1 = in the main process).',
  ),
  max_message_bytes: d(
    z.number().int().min(1024).default(26_214_400),
    'Largest message accepted (SIZE is advertised with it). Larger ones get 552 5.3.4.',
  ),
  max_recipients: d(
    z.number().int().min(1).max(10_000).default(100),
    'Recipients per message; later ones get 452 4.5.3 so the client sends them in a new transaction.',
  ),
  max_command_line: d(
    z.number().int().min(512).max(16_384).default(512),
    'Longest command line in octets including CRLF (RFC 5321 4.5.3.1.4 says 512). Longer lines get 500 5.5.2.',
  ),
  max_connections: d(z.number().int().min(1).default(1_000), 'Concurrent SMTP connections in total.'),
  max_connections_per_ip: d(
    z.number().int().min(1).default(50),
    'Concurrent SMTP connections from one client address; more get 421 4.7.0.',
  ),
  max_errors: d(
    z.number().int().min(1).default(10),
    'Protocol errors in one session before it is closed with 421.',
  ),
  idle_timeout_s: d(
    z.number().int().min(1).default(300),
    'Seconds a client may stay silent. Also the per-request deadline: from each reply, the next command (or, after 354, the whole message) must arrive within this time plus 2 ms per byte received (a floor of 500 bytes/s, as Postfix\'s smtpd_min_data_rate), and a TLS handshake within this time; otherwise 421 4.4.2.',
  ),
  session_timeout_s: d(
    z.number().int().min(10).default(1_800),
    'Longest a single SMTP session may last, in seconds.',
  ),
  bare_newline: d(
    z.enum(['normalize', 'reject']).default('normalize'),
    'What to do with a bare CR or LF in message data. "normalize" turns it into CRLF before analysis and relay; "reject" refuses the message with 550 5.5.2. A lone dot between bare line ends (SMTP smuggling) is refused either way.',
  ),
  greet_pause: greetPause.prefault({}),
  tls: z
    .strictObject({
      cert: d(z.string().default(''), 'PEM certificate file. Empty: a self-signed one is generated under data_dir/tls/.'),
      key: d(z.string().default(''), 'PEM private key file for cert.'),
    })
    .prefault({}),
  recipient_verify: z
    .strictObject({
      enabled: d(
        z.boolean().default(false),
        'Verify recipients against the downstream with an RCPT probe before accepting them.',
      ),
      cache_ttl_s: d(z.number().int().min(1).default(3_600), 'How long a probe answer is remembered.'),
      timeout_ms: d(z.number().int().min(100).default(5_000), 'Probe timeout; on timeout the recipient gets 451 4.4.3.'),
    })
    .prefault({}),
});

const downstream = z.strictObject({
  host: d(z.string().min(1), 'Mail server that receives accepted mail.'),
  port: d(z.number().int().min(1).max(65_535).default(25), 'Its port.'),
  protocol: d(z.enum(['smtp', 'lmtp']).default('smtp'), 'Protocol spoken to it.'),
  tls: d(
    z.enum(['none', 'starttls', 'require_starttls', 'implicit']).default('starttls'),
    '"starttls" upgrades when offered, "require_starttls" keeps mail queued unless TLS is used, "implicit" is TLS from the first byte.',
  ),
  tls_verify: d(z.boolean().default(false), 'Check the downstream certificate.'),
  max_connections: d(z.number().int().min(1).max(100).default(5), 'Pooled connections to it.'),
});

const relay = z.strictObject({
  downstream: downstream.optional().meta({
    description: 'Where accepted mail goes. Without it, mail is delivered to Maildirs under data_dir/mailboxes/.',
  }),
  smarthost: z
    .strictObject({
      host: d(z.string().min(1), 'Host that relays mail to other domains.'),
      port: d(z.number().int().min(1).max(65_535).default(25), 'Its port.'),
    })
    .optional()
    .meta({ description: 'Relay for mail to other domains (delivery status notifications). Without it, their MX is used.' }),
  retry_schedule_s: d(
    z.array(z.number().int().min(1)).min(1).default([60, 300, 900, 1_800, 3_600]),
    'Delays before each retry after a temporary failure; the last one repeats.',
  ),
  max_queue_lifetime_s: d(
    z.number().int().min(60).default(432_000),
    'After this long undelivered, a message is returned to its sender (default 5 days).',
  ),
  connect_timeout_ms: d(z.number().int().min(100).default(30_000), 'Timeout for connecting to the downstream.'),
  command_timeout_ms: d(
    z.number().int().min(100).default(300_000),
    'Timeout for each reply of the downstream, including the one after the final dot.',
  ),
  concurrency: d(z.number().int().min(1).max(1_000).default(20), 'Deliveries in flight at once.'),
});

const actions = z.strictObject({
  tag: d(z.number().default(5), 'Score at or above which the message is tagged with X-Postern headers.'),
  quarantine: d(z.number().default(8), 'Score at or above which the message is held in quarantine.'),
  reject: d(z.number().default(15), 'Score at or above which the message is refused with 554 5.7.1.'),
});

// The bounds of the shared MIME parse (analysis/mime-scan.ts). A message over any of them is not parsed and scores
// MIME_UNSCANNABLE, which holds it; raise one only for mail you know needs it.
const parse = z.strictObject({
  max_depth: d(z.number().int().min(2).max(1_000).default(32), 'Deepest MIME nesting (multiparts and attached messages) parsed.'),
  max_parts: d(z.number().int().min(1).max(1_000_000).default(1_000), 'Most MIME parts in one message.'),
  max_header_bytes: d(z.number().int().min(1_024).default(256 * 1024), 'Largest header block of one part, in bytes.'),
  max_total_header_bytes: d(z.number().int().min(1_024).default(1024 * 1024), 'Largest sum of all header blocks, in bytes.'),
  max_params: d(z.number().int().min(4).default(64), 'Most parameters in one header field (RFC 2231 floods).'),
  max_boundary_bytes: d(z.number().int().min(70).default(2_048), 'Longest multipart boundary, in bytes.'),
  max_decoded_bytes: d(z.number().int().min(1_024).default(64 * 1024 * 1024), 'Most bytes all parts may decode to.'),
});

const analysis = z.strictObject({
  actions: actions.prefault({}),
  parse: parse.prefault({}).meta({ description: 'Bounds of the MIME parse shared by every check.' }),
  scores: d(
    z.record(z.string(), z.union([z.number(), z.literal('reject'), z.literal('quarantine')])).default({}),
    'Score overrides per symbol name; "reject" forces refusal, "quarantine" holds every message it hits (see docs/symbols.md for the symbols that hold by default).',
  ),
  subject_prefix: d(z.string().default(''), 'Prefix added to the Subject of tagged mail, e.g. "[SPAM]".'),
  check_timeout_ms: d(z.number().int().min(1).default(2_000), 'Time budget of one check.'),
  threads: d(
    z.number().int().min(0).max(16).default(1),
    'Worker threads that analyse each message after DATA (parse, checks, similarity fingerprint), so that the analysis does not hold up the SMTP sessions, spool writes and relay of the event loop. 0 analyses on the event loop. A thread costs about 60 MB of memory.',
  ),
  checks: z.record(z.string(), z.record(z.string(), z.unknown())).default({}).meta({
    description: 'Options of each check under analysis.checks.<name> (see docs/config.md).',
  }),
});

const staticRule = z.strictObject({
  recipient: d(z.string().default('*'), 'Recipient address, "*@domain" or "*".'),
  sender: d(z.string().default('*'), 'Envelope sender address, "*@domain" or "*".'),
  action: d(
    z.enum(['accept', 'tag', 'quarantine', 'redirect', 'defer', 'reject']).optional(),
    'Action forced for matching mail.',
  ),
  score: d(z.number().optional(), 'Score added for matching mail (negative to allow-list softly).'),
  redirect_to: d(z.string().includes('@').optional(), 'Mailbox for action "redirect".'),
});

const policy = z.strictObject({
  rules: d(z.array(staticRule).default([]), 'Static per-recipient and per-sender adjustments, applied in order.'),
  redirect_to: d(
    z.string().default(''),
    'Default mailbox that action "redirect" delivers to when a rule or live policy does not name one.',
  ),
});

/** A cron expression croner accepts (five to seven fields), so that a typo fails at `config check`, not at 08:00. */
function cronPattern(s: string, ctx: z.RefinementCtx): void {
  try {
    new Cron(s, { paused: true }).stop();
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a cron expression such as "0 8 * * 1-5": ${(err as Error).message.replace(/^CronPattern: /, '')}` });
  }
}

function timeZone(s: string, ctx: z.RefinementCtx): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: s });
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not an IANA time zone such as "Europe/Berlin" or "UTC"` });
  }
}

const quarantine = z.strictObject({
  retention_days: d(z.number().int().min(1).default(30), 'Days quarantined mail is kept; then it is deleted by the purge job.'),
  purge_interval_s: d(z.number().int().min(10).default(3_600), 'How often expired quarantined mail is deleted.'),
  link_ttl_days: d(z.number().int().min(1).max(90).default(14), 'Days a link in a digest stays valid.'),
  link_secret: secret.optional().meta({
    description:
      'Key that signs quarantine links (HMAC-SHA256), at least 32 characters, e.g. { env = "POSTERN_LINK_SECRET" }; the same on every node. Unset: a random key generated once in data_dir/keys/quarantine.key.',
  }),
  link_secret_previous: d(
    z.array(z.string().min(32, 'a link key must be at least 32 characters')).default([]),
    'Earlier link keys still honoured after a rotation, until the links they signed expire; remove one to revoke its links.',
  ),
  session_ttl_h: d(
    z.number().int().min(1).max(720).default(24),
    'Hours a recipient\'s quarantine page stays open after they came in through a digest link.',
  ),
  digest: z
    .strictObject({
      enabled: d(z.boolean().default(true), 'Send each recipient a digest of what was held for them since the last one.'),
      schedule: d(
        z.string().min(1).superRefine(cronPattern).default('0 8 * * 1-5'),
        'When digests go out: a cron expression (minute hour day-of-month month day-of-week), weekdays at 08:00 by default.',
      ),
      timezone: d(z.string().min(1).superRefine(timeZone).default('UTC'), 'IANA time zone the schedule is read in, e.g. "Europe/Berlin".'),
      from: d(
        z.string().default(''),
        'Sender address of digests; empty for postmaster@ the first of gateway.domains.',
      ),
      max_entries: d(z.number().int().min(1).max(1_000).default(200), 'Most entries listed in one digest; the rest are on the quarantine page.'),
    })
    .prefault({}),
});

// Prometheus metrics at /metrics (center/metrics.ts): scrapers come without a session, so by address or a token.
const webMetrics = z.strictObject({
  enabled: d(z.boolean().default(true), 'Serve Prometheus metrics at /metrics on the web server.'),
  allow: d(z.array(cidr).default(['127.0.0.0/8', '::1/128']), 'Networks that may read /metrics without a token.'),
  token: secret.optional().meta({
    description: 'Bearer token that may read /metrics from any address, e.g. { env = "POSTERN_METRICS_TOKEN" }. The admin API token (web.api_token) may too.',
  }),
});

// The HTTP server: quarantine links and pages now, the monitoring center's API and dashboard (center/).
const web = z.strictObject({
  enabled: d(z.boolean().default(true), 'Run the HTTP server under postern start.'),
  listen: d(listenAddress.default('127.0.0.1:8025'), 'Address the HTTP server binds to.'),
  public_url: d(
    z.string().regex(/^https?:\/\/[^/\s]+(\/[^\s]*)?$/, 'expected an absolute http(s) URL such as "https://mail-gw.example.com"').or(z.literal('')).default(''),
    'Base URL of the links in digests, as users reach the server (behind a proxy: its address); empty for http://LISTEN.',
  ),
  api_token: secret.optional().meta({
    description: 'Bearer token with the admin role on the API under /api/v1 (scripts, monitoring), e.g. { env = "POSTERN_API_TOKEN" }. Accounts have tokens of their own (postern user token).',
  }),
  metrics: webMetrics.prefault({}),
  session_hours: d(
    z.number().positive().max(24 * 30).default(12),
    'Hours a sign-in to the center (postern user accounts) lasts without use; every request made with it starts the time again.',
  ),
});

const store = z.strictObject({
  url: d(
    z.string().default(''),
    'Index and event store: empty for SQLite at data_dir/postern.db, "sqlite:PATH", or "postgres://user@host/db".',
  ),
  password: secret.optional().meta({ description: 'Database password, e.g. { env = "POSTERN_DB_PASSWORD" }.' }),
  event_retention_days: d(z.number().int().min(1).default(30), 'Days events are kept, unless event_retention_by_type says otherwise.'),
  event_retention_by_type: d(
    z
      .record(z.string().regex(/^[a-z]+(\.[a-z_]+)*$/, 'expected an event type or prefix such as "smtp.connect" or "smtp"'), z.number().int().min(1))
      .default({ 'smtp.connect': 7, 'smtp.helo': 7, 'smtp.mail': 7, 'smtp.rcpt.accepted': 7, 'smtp.close': 7, 'relay.attempt': 14 }),
    'Days kept per event type or type prefix ("smtp" covers every smtp.* type); the longest matching prefix wins. Events past their retention are first counted into hourly aggregates (event_rollups), then deleted.',
  ),
  rollup_retention_days: d(z.number().int().min(1).default(400), 'Days the hourly aggregates of deleted events are kept.'),
});

// Live counters, sliding windows and the fan-out of policy changes (matrix/counters.ts, matrix/bus.ts).
const matrix = z.strictObject({
  live: d(
    z.enum(['memory', 'redis']).default('memory'),
    '"memory" keeps live counters in this process and tells this host\'s processes of policy changes; "redis" shares both across gateway nodes through redis_url.',
  ),
  redis_url: d(z.string().regex(/^rediss?:\/\//, 'expected a URL such as "redis://127.0.0.1:6379"').default('redis://127.0.0.1:6379'), 'Redis for live = "redis".'),
  redis_prefix: d(z.string().default('postern:'), 'Prefix of every Redis key and channel Postern uses.'),
});

const detectorBase = {
  enabled: d(z.boolean().default(true), 'Run this detector.'),
};

// The trend analyzer's detectors (trends/detectors/*.ts); each finding becomes a live policy.
const trends = z.strictObject({
  enabled: d(z.boolean().default(true), 'Run the trend analyzer under postern start (a worker thread).'),
  poll_ms: d(z.number().int().min(10).max(10_000).default(100), 'How often the analyzer reads new events from the store.'),
  harvest: z
    .strictObject({
      ...detectorBase,
      window_s: d(z.number().int().min(10).default(3_600), 'Window of the fast forms.'),
      ip_unknown: d(z.number().int().min(1).default(15), 'Unknown recipients from one address within window_s that make a harvest.'),
      ip_ratio: d(
        z.number().min(0).max(1).default(0.5),
        'And at least this share of that address\'s recipients in the window unknown (a sender with a few stale addresses among many good ones is not harvesting).',
      ),
      net_unknown: d(z.number().int().min(1).default(30), 'Unknown recipients from one /24 (IPv4) or /64 (IPv6) within window_s.'),
      net_min_ips: d(z.number().int().min(2).default(4), 'Distinct addresses of that network among them (else it is one address\'s harvest).'),
      slow_window_s: d(z.number().int().min(60).default(86_400), 'Window of the slow forms.'),
      slow_ip_unknown: d(z.number().int().min(1).default(40), 'Unknown recipients from one address within slow_window_s.'),
      slow_net_unknown: d(z.number().int().min(1).default(100), 'Unknown recipients from one network within slow_window_s.'),
      ttl_s: d(z.number().int().min(1).default(3_600), 'How long the block lasts.'),
    })
    .prefault({}),
  flood: z
    .strictObject({
      ...detectorBase,
      window_s: d(z.number().int().min(1).default(60), 'Length of one counting window.'),
      baseline_windows: d(z.number().int().min(2).default(60), 'Windows averaged into the source\'s own baseline (an exponential average).'),
      factor: d(z.number().min(1).default(10), 'A window this many times the baseline is a flood.'),
      min_messages: d(z.number().int().min(1).default(100), 'Fewest messages in one window that can be a flood, whatever the baseline.'),
      throttle_factor: d(z.number().min(0).default(2), 'The throttle lets through this many times the baseline per window (at least 1).'),
      ttl_s: d(z.number().int().min(1).default(900), 'How long the throttle lasts.'),
    })
    .prefault({}),
  reputation: z
    .strictObject({
      ...detectorBase,
      window_s: d(z.number().int().min(60).default(3_600), 'Window of a source\'s recent messages.'),
      min_messages: d(z.number().int().min(1).default(10), 'Fewest recent messages before a source is judged.'),
      bad_ratio: d(z.number().min(0).max(1).default(0.8), 'Share refused or quarantined at which the source is blocked.'),
      ttl_s: d(z.number().int().min(1).default(3_600), 'How long the block lasts.'),
    })
    .prefault({}),
  backscatter: z
    .strictObject({
      ...detectorBase,
      window_s: d(z.number().int().min(10).default(600), 'Window of the count.'),
      bounces: d(z.number().int().min(1).default(30), 'Bounces (null sender) to one recipient within window_s that make a storm.'),
      ttl_s: d(z.number().int().min(1).default(3_600), 'How long bounces to that recipient are held in quarantine.'),
    })
    .prefault({}),
  brute_force: z
    .strictObject({
      ...detectorBase,
      window_s: d(z.number().int().min(10).default(600), 'Window of the counts.'),
      ip_failures: d(z.number().int().min(1).default(10), 'Failed logins from one address within window_s.'),
      user_ips: d(z.number().int().min(2).default(5), 'Distinct addresses failing logins to one user within window_s.'),
      ip_users: d(z.number().int().min(2).default(5), 'Distinct users failing logins from one address within window_s (spraying).'),
      ttl_s: d(z.number().int().min(1).default(1_800), 'How long the block lasts.'),
    })
    .prefault({}),
  login_anomaly: z
    .strictObject({
      ...detectorBase,
      window_s: d(z.number().int().min(10).default(900), 'Window of the failed logins counted before a success.'),
      failures_before_success: d(
        z.number().int().min(1).default(5),
        'Failed logins to one user within window_s after which its successful login is an alert (likely compromise).',
      ),
      new_network: d(z.boolean().default(true), "Alert when a user logs in from a network (/24, /64) not seen for it since the analyzer started."),
    })
    .prefault({}),
});

// The outbound listener (outbound/server.ts): the organisation's own mail to other domains, relayed and learned from.
const outbound = z.strictObject({
  enabled: d(
    z.boolean().default(false),
    'Run a listener that relays the organisation\'s outbound mail (from its mail server or clients in networks) and learns its correspondents from it.',
  ),
  listen: d(listenAddress.default('127.0.0.1:2587'), 'Address the outbound listener binds to.'),
  networks: d(
    z.array(cidr).default(['127.0.0.1/32', '::1/128']),
    'Networks allowed to relay through the outbound listener; any other client gets 554 at connect.',
  ),
  learn: d(
    z.boolean().default(true),
    'Learn (internal sender, external recipient) pairs and sent Message-IDs from relayed mail, for the business check.',
  ),
  sent_retention_days: d(
    z.number().int().min(1).max(3_650).default(180),
    'Days a sent Message-ID is kept, so that a reply to it is recognised (REPLY_TO_SENT).',
  ),
});

/**
 * The mailbox server behind one of the monitor's proxies: the same keys for every protocol, each described for its
 * protocol (how TLS is started, how the client's address is passed on, what a client is told on a timeout).
 */
function upstreamSchema(o: { host: string; port: number; tls: string; forward: string; timeout: string }) {
  return z.strictObject({
    host: d(z.string().min(1).default('127.0.0.1'), o.host),
    port: d(z.number().int().min(1).max(65_535).default(o.port), 'Its port.'),
    tls: d(z.enum(['none', 'starttls', 'implicit']).default('none'), o.tls),
    tls_verify: d(z.boolean().default(false), 'Check the server\'s certificate.'),
    forward_client_ip: d(z.boolean().default(true), o.forward),
    timeout_s: d(z.number().int().min(1).default(30), o.timeout),
  });
}

// The monitor proxy in front of the organisation's mailbox server (monitor/): one section per protocol.
const imapUpstream = upstreamSchema({
  host: 'The IMAP server Postern logs users in to (Dovecot, or any IMAP4rev1 server advertising LITERAL+).',
  port: 143,
  tls: '"none" for a server on the same host or a private network, "starttls" upgrades before login (a server that greets with PREAUTH or refuses STARTTLS is not used), "implicit" is TLS from the first byte (port 993).',
  forward: 'Tell the server each client\'s address, port and Postern\'s session id with ID x-originating-ip, x-originating-port, x-connected-ip and x-session-ext-id before LOGIN. Dovecot believes them only from login_trusted_networks; clients\' own x-* fields are always removed.',
  timeout: 'Seconds to wait for the server to connect, greet and answer LOGIN; then the client gets NO [UNAVAILABLE].',
});

const monitorImap = z.strictObject({
  enabled: d(z.boolean().default(false), 'Run the IMAP proxy.'),
  listen: d(listenAddress.default('127.0.0.1:1143'), 'Address of the IMAP listener (STARTTLS offered; port 143 in production).'),
  listen_tls: d(
    z.union([listenAddress, z.literal('')]).default(''),
    'Address of the implicit-TLS IMAP listener (port 993 in production), e.g. "0.0.0.0:993"; empty for none. Both use gateway.tls\'s certificate.',
  ),
  upstream: imapUpstream.prefault({}),
  max_line: d(
    z.number().int().min(1_024).max(1_048_576).default(65_536),
    'Longest command in octets, counting its lines but not, after login, its literals (Dovecot\'s imap_max_line_length). Before login, literals count too. Longer commands get BAD and never reach the server.',
  ),
  max_literal: d(
    z.number().int().min(4_096).default(52_428_800),
    'Largest literal after login (an APPEND of one message); a larger one gets BAD [TOOBIG] before a byte of it is read.',
  ),
  max_nonsync_literal: d(
    z.number().int().min(0).max(1_048_576).default(4_096),
    'Largest non-synchronizing literal {n+} (RFC 7888 LITERAL-: 4096). A larger one is read and dropped, then answered BAD [TOOBIG]; one larger than max_literal closes the connection.',
  ),
  max_bad_commands: d(
    z.number().int().min(1).max(100).default(3),
    'Invalid or refused commands before login after which the client gets "* BYE Too many invalid IMAP commands." (Dovecot: 3).',
  ),
  failure_delay_ms: d(
    z.number().int().min(0).max(60_000).default(1_000),
    'Delay of the first failed-login reply to a client address; each further failure from that address within failure_window_s doubles it. Postern\'s own, whatever the server does (a server that trusts Postern skips its own penalty). 0 = none.',
  ),
  failure_delay_max_ms: d(z.number().int().min(0).max(60_000).default(15_000), 'Cap of that delay.'),
  failure_window_s: d(z.number().int().min(1).default(900), 'An address with no failed login for this long starts again at failure_delay_ms.'),
  login_timeout_s: d(z.number().int().min(5).default(60), 'Seconds a client may take to log in after connecting.'),
  idle_timeout_s: d(
    z.number().int().min(60).default(1_860),
    'Seconds a logged-in client may stay silent (RFC 9051 §5.4 asks for at least 30 minutes, for IDLE).',
  ),
});

const pop3Upstream = upstreamSchema({
  host: 'The POP3 server Postern logs users in to (Dovecot, or any POP3 server that takes AUTH PLAIN).',
  port: 110,
  tls: '"none" for a server on the same host or a private network, "starttls" sends STLS before login (a server that refuses it is not used), "implicit" is TLS from the first byte (port 995).',
  forward: 'Tell the server each client\'s address, port and Postern\'s session id with XCLIENT before login, when the server offers it in its greeting (Dovecot does so to login_trusted_networks); a client\'s own XCLIENT is always refused.',
  timeout: 'Seconds to wait for the server to connect, greet and answer the login; then the client gets -ERR [SYS/TEMP].',
});

const monitorPop3 = z.strictObject({
  enabled: d(z.boolean().default(false), 'Run the POP3 proxy.'),
  listen: d(listenAddress.default('127.0.0.1:1110'), 'Address of the POP3 listener (STLS offered; port 110 in production).'),
  listen_tls: d(
    z.union([listenAddress, z.literal('')]).default(''),
    'Address of the implicit-TLS POP3 listener (port 995 in production), e.g. "0.0.0.0:995"; empty for none. Both use gateway.tls\'s certificate.',
  ),
  upstream: pop3Upstream.prefault({}),
  max_line: d(
    z.number().int().min(255).max(65_536).default(255),
    'Longest command line in octets, CRLF included (RFC 2449: 255). Longer lines get -ERR and never reach the server; an AUTH exchange may use up to 4096.',
  ),
  max_bad_commands: d(
    z.number().int().min(1).max(100).default(3),
    'Invalid or refused commands before login after which the client gets "-ERR Too many bad commands." and is disconnected (Dovecot: 3).',
  ),
  failure_delay_ms: d(
    z.number().int().min(0).max(60_000).default(1_000),
    'Delay of the first failed-login reply to a client address; each further failure from that address within failure_window_s doubles it. 0 = none.',
  ),
  failure_delay_max_ms: d(z.number().int().min(0).max(60_000).default(15_000), 'Cap of that delay.'),
  failure_window_s: d(z.number().int().min(1).default(900), 'An address with no failed login for this long starts again at failure_delay_ms.'),
  login_timeout_s: d(z.number().int().min(5).default(60), 'Seconds a client may take to log in after connecting.'),
  idle_timeout_s: d(z.number().int().min(60).default(600), 'Seconds a logged-in client may stay silent (RFC 1939: at least 10 minutes).'),
});

const submissionUpstream = upstreamSchema({
  host: 'The submission server Postern logs users in to (Dovecot\'s submission service, or Postfix\'s 587, with AUTH PLAIN).',
  port: 587,
  tls: '"none" for a server on the same host or a private network, "starttls" sends STARTTLS before login (a server that refuses it is not used), "implicit" is TLS from the first byte (port 465).',
  forward: 'Tell the server each client\'s address, port and Postern\'s session id with XCLIENT before login, when the server offers it in its EHLO reply (Dovecot does so to login_trusted_networks, Postfix to smtpd_authorized_xclient_hosts); a client\'s own XCLIENT is always refused.',
  timeout: 'Seconds to wait for the server to connect, greet and answer the login; then the client gets 454 4.7.0.',
});

const monitorSubmission = z.strictObject({
  enabled: d(z.boolean().default(false), 'Run the submission proxy.'),
  listen: d(listenAddress.default('127.0.0.1:1587'), 'Address of the submission listener (STARTTLS offered; port 587 in production).'),
  listen_tls: d(
    z.union([listenAddress, z.literal('')]).default(''),
    'Address of the implicit-TLS submission listener (port 465 in production), e.g. "0.0.0.0:465"; empty for none. Both use gateway.tls\'s certificate.',
  ),
  upstream: submissionUpstream.prefault({}),
  plaintext_auth: d(
    z.boolean().default(false),
    'Offer and accept AUTH without TLS from any client. Off (Dovecot\'s disable_plaintext_auth): AUTH needs STARTTLS or the implicit-TLS listener, except from a loopback address.',
  ),
  max_line: d(
    z.number().int().min(512).max(65_536).default(4_096),
    'Longest command line in octets, CRLF included (RFC 5321: 512 at least). Longer lines get 500 5.5.6 and never reach the server. The message itself is not bound by it.',
  ),
  max_bad_commands: d(
    z.number().int().min(1).max(100).default(10),
    'Invalid or refused commands before login after which the client gets 421 and is disconnected.',
  ),
  failure_delay_ms: d(
    z.number().int().min(0).max(60_000).default(1_000),
    'Delay of the first failed-login reply to a client address; each further failure from that address within failure_window_s doubles it. 0 = none.',
  ),
  failure_delay_max_ms: d(z.number().int().min(0).max(60_000).default(15_000), 'Cap of that delay.'),
  failure_window_s: d(z.number().int().min(1).default(900), 'An address with no failed login for this long starts again at failure_delay_ms.'),
  login_timeout_s: d(z.number().int().min(5).default(60), 'Seconds a client may take to log in after connecting.'),
  idle_timeout_s: d(z.number().int().min(60).default(300), 'Seconds a logged-in client may stay silent (RFC 5321 §4.5.3.2: 5 minutes).'),
});

// The addresses each mailbox user logged in from (table mailbox_logins), which a protect policy lets in.
const knownLogins = z.strictObject({
  retention_days: d(
    z.number().int().min(1).max(3_650).default(180),
    'Days an address stays known for a user after its last successful login; then it is forgotten.',
  ),
  same_network: d(
    z.boolean().default(false),
    'While a user is protected, also let in addresses of the /24 (IPv4) or /64 (IPv6) of a known address, not only the known addresses themselves.',
  ),
});

// The audit trail (monitor/audit/): every session and mailbox action of the users listed, as audit.* events.
const monitorAudit = z.strictObject({
  users: d(
    z.array(z.string().regex(/^(\*|\*@[^@\s]+|[^@\s*]+@[^@\s*]+)$/, 'must be an address, *@domain or *')).default([]),
    'Mailbox users whose every session and action (SELECT, FETCH, STORE, COPY, MOVE, EXPUNGE, APPEND, RETR, DELE, MAIL FROM, RCPT TO, DATA, logout) is recorded as audit.* events: addresses, *@domain, or * for everyone. Others get only their login and attack events.',
  ),
});

// Dovecot's auth-policy protocol served on the web server (monitor/auth-policy.ts), for sites with no proxy.
const authPolicy = z
  .strictObject({
    enabled: d(
      z.boolean().default(false),
      'Answer Dovecot\'s auth policy requests (auth_policy_server_url) at /api/v1/dovecot/auth-policy on the web server: live policies decide each login, and Dovecot\'s reports become auth.* events.',
    ),
    api_key: secret.optional().meta({
      description:
        'What Dovecot must send, as "Authorization: Bearer KEY" (auth_policy_server_api_header) or as the password of HTTP basic auth, e.g. { env = "POSTERN_DOVECOT_POLICY_KEY" }. Required when enabled.',
    }),
  })
  .refine((s) => !s.enabled || s.api_key !== undefined, { path: ['api_key'], message: 'required when monitor.auth_policy.enabled is true' });

// A load balancer in front of the monitor's listeners (monitor/proxy-protocol.ts): its PROXY header names the client.
const proxyProtocol = z.strictObject({
  trusted: d(
    z.array(cidr).default([]),
    'Load balancers (addresses or CIDRs) whose connections to the monitor\'s listeners (IMAP, POP3, submission) must start with a PROXY protocol header (v1 or v2); the client\'s address and port are taken from it. From any other address a PROXY header is a protocol error and closes the connection.',
  ),
  header_timeout_s: d(z.number().int().min(1).max(60).default(5), 'Seconds a trusted load balancer may take to send its header; then the connection is closed.'),
});

// Webmail installations reporting their users' logins and actions (monitor/webmail/): POST /api/v1/collect/webmail.
const webmailKey = z.strictObject({
  name: d(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a short name such as "roundcube" (a-z, 0-9, ., _, -)'), 'Names the installation in events (source "webmail:NAME").'),
  key: secret.meta({ description: 'What the installation sends as "Authorization: Bearer KEY", e.g. { env = "POSTERN_WEBMAIL_KEY" }.' }),
});
const monitorWebmail = z
  .strictObject({
    enabled: d(z.boolean().default(false), 'Take webmail events at POST /api/v1/collect/webmail on the web server.'),
    keys: d(z.array(webmailKey).default([]), 'One key per webmail installation.'),
  })
  .refine((s) => !s.enabled || s.keys.length > 0, { path: ['keys'], message: 'needs at least one key when monitor.webmail.enabled is true' })
  .refine((s) => new Set(s.keys.map((k) => k.name)).size === s.keys.length, { path: ['keys'], message: 'names must be unique' });

const monitor = z.strictObject({
  auth_policy: authPolicy.prefault({}),
  imap: monitorImap.prefault({}),
  pop3: monitorPop3.prefault({}),
  submission: monitorSubmission.prefault({}),
  known_logins: knownLogins.prefault({}),
  audit: monitorAudit.prefault({}),
  proxy_protocol: proxyProtocol.prefault({}),
  webmail: monitorWebmail.prefault({}),
});

// The similarity index (similarity/): fingerprints of recent messages and the clusters they form.
const similarity = z.strictObject({
  window_h: d(z.number().int().min(1).max(24 * 14).default(48), 'Hours a message stays in the similarity index; older ones leave their clusters.'),
  join_jaccard: d(
    z.number().min(0.05).max(1).default(0.6),
    'Estimated Jaccard similarity of the normalised texts\' word 3-shingles at or above which two messages are alike outright.',
  ),
  confirm_jaccard: d(
    z.number().min(0.05).max(1).default(0.3),
    'Similarity at or above which two messages are alike when their TLSH distance is at most tlsh_max, or they have the same attachment layout, types and normalised names.',
  ),
  tlsh_max: d(z.number().int().min(0).max(1_000).default(100), 'TLSH distance of the normalised texts at or below which a match between the two thresholds is confirmed.'),
  min_shingles: d(
    z.number().int().min(1).default(8),
    'Fewest distinct word 3-shingles for a text to be compared at all; shorter messages match only by a shared attachment.',
  ),
  bucket_cap: d(
    z.number().int().min(2).max(10_000).default(32),
    'Latest messages kept per LSH bucket and per attachment hash: what a query may look at, whatever the size of a campaign.',
  ),
}).refine((s) => s.confirm_jaccard <= s.join_jaccard, { path: ['confirm_jaccard'], message: 'must not exceed join_jaccard' });

// Outbreak detection (trends/detectors/outbreak.ts), the in-line outbreak check and hold (similarity/watch.ts), and
// the retroactive action on copies already delivered (retro/).
const outbreakPullback = z
  .strictObject({
    host: d(z.string().default(''), 'IMAP server holding the delivered copies (the downstream mail server); empty: copies delivered downstream are not pulled back, only listed.'),
    port: d(z.number().int().min(1).max(65_535).default(143), 'Its IMAP port.'),
    tls: d(z.enum(['none', 'starttls', 'implicit']).default('starttls'), 'How to reach it: plain (none), STARTTLS, or TLS from the first byte (implicit, usually port 993).'),
    tls_verify: d(z.boolean().default(true), 'Verify the server certificate (turn off only for a server on loopback with a self-signed one).'),
    master_user: d(z.string().default(''), "Master user (Dovecot's master passdb) that may log in as any mailbox user."),
    master_password: secret.optional().meta({ description: 'Password of the master user, e.g. { env = "POSTERN_PULLBACK_PASSWORD" }. Required when host is set.' }),
    login_format: d(
      z.string().default('{user}*{master}'),
      "How the login name is built from the mailbox user and the master user: Dovecot's default auth_master_user_separator is '*'.",
    ),
    action: d(z.enum(['move', 'delete']).default('move'), 'What becomes of a copy found in the mailbox: moved to `folder` (the user can still see it there) or deleted. Either way Postern keeps it in its quarantine first.'),
    folder: d(z.string().min(1).default('Quarantine'), 'Mailbox folder copies are moved to (created when missing).'),
    mailboxes: d(z.array(z.string().min(1)).min(1).default(['INBOX']), 'Folders searched for the copy, by Message-ID.'),
    timeout_ms: d(z.number().int().min(100).default(15_000), 'Time allowed for one pull-back (connect, login, search, move).'),
  })
  .refine((s) => !s.host || s.master_password !== undefined, { path: ['master_password'], message: 'required when outbreak.pullback.host is set' })
  .refine((s) => !s.host || s.master_user !== '', { path: ['master_user'], message: 'required when outbreak.pullback.host is set' });

const outbreak = z
  .strictObject({
    enabled: d(z.boolean().default(true), 'Find outbreaks: clusters of similar suspicious messages from many sources.'),
    suspicious_score: d(
      z.number().default(3),
      'Score (before the outbreak symbols) at or above which a message counts as suspicious for the outbreak rule.',
    ),
    min_members: d(z.number().int().min(2).default(3), 'Fewest members of a cluster, within burst_min, for it to be an outbreak.'),
    min_sources: d(z.number().int().min(1).default(3), 'Fewest distinct client addresses among its members.'),
    min_recipients: d(z.number().int().min(1).default(3), 'Fewest recipients over all its members.'),
    min_suspicious_share: d(z.number().min(0).max(1).default(0.5), 'Least share of its members that are suspicious.'),
    burst_min: d(z.number().int().min(1).default(60), 'Minutes within which min_members must have arrived: the velocity part of the rule.'),
    action: d(z.enum(['quarantine', 'block']).default('quarantine'), 'What the cluster policy of a declared outbreak does with its later copies: hold them, or refuse them at end of DATA.'),
    policy_ttl_h: d(z.number().int().min(1).default(48), 'Hours a declared outbreak stays in force after its last member.'),
    hold_s: d(
      z.number().int().min(0).max(86_400).default(0),
      'When above 0: a suspicious message of a cluster younger than this is deferred (451 4.7.1), so that the retry meets a classified cluster. Real MTAs retry; most bulk senders do not. 0: off.',
    ),
    mirror_window_min: d(
      z.number().int().min(5).max(48 * 60).default(180),
      "Minutes of recent messages each gateway keeps in memory to match new copies in line (the analyzer keeps similarity.window_h); a campaign that pauses longer is still caught by the analyzer and pulled back.",
    ),
    mirror_poll_ms: d(z.number().int().min(50).max(60_000).default(250), "How often each gateway reads the clusters' new members from the store."),
    retro: d(z.boolean().default(true), 'Act on copies already taken when a cluster is declared: quarantine those in the spool, pull back those delivered.'),
    notify_recipients: d(z.boolean().default(true), 'Tell each recipient whose copy was pulled back.'),
    notify_admin: d(z.string().default(''), 'Address told of each declared outbreak and what was done; empty: postmaster@ the first accepted domain.'),
    pullback: outbreakPullback.prefault({}),
  });

const log = z.strictObject({
  level: d(z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'), 'Log level.'),
});

export const configSchema = z.strictObject({
  data_dir: d(z.string().default('./data'), 'Where the spool, store, mailboxes and keys live (relative to this file).'),
  gateway: gateway.prefault({}),
  relay: relay.prefault({}),
  analysis: analysis.prefault({}),
  policy: policy.prefault({}),
  quarantine: quarantine.prefault({}),
  web: web.prefault({}),
  store: store.prefault({}),
  matrix: matrix.prefault({}),
  trends: trends.prefault({}),
  outbound: outbound.prefault({}),
  monitor: monitor.prefault({}),
  similarity: similarity.prefault({}),
  outbreak: outbreak.prefault({}),
  log: log.prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
