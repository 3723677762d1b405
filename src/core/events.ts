// The closed event catalogue: every product event Postern records, with its level and meaning.
// One emit() feeds the data matrix (the store), the logs and, later, the metrics.

export const EVENT_TYPES = {
  'smtp.connect': { level: 'debug', description: 'A client connected; carries the greeting pause applied.' },
  'smtp.connect.refused': { level: 'info', description: 'A connection was refused before the greeting (limits, policy).' },
  'smtp.early_talker': { level: 'info', description: 'A client sent data before the greeting.' },
  'smtp.helo': { level: 'debug', description: 'A client introduced itself with HELO/EHLO.' },
  'smtp.mail': { level: 'debug', description: 'A transaction started with MAIL FROM.' },
  'smtp.mail.rejected': { level: 'info', description: 'MAIL FROM was refused.' },
  'smtp.rcpt.accepted': { level: 'debug', description: 'A recipient was accepted at RCPT.' },
  'smtp.rcpt.rejected': {
    level: 'info',
    description: 'A recipient was refused at RCPT (unknown recipient, relay attempt, limit, policy).',
  },
  'smtp.protocol_error': {
    level: 'info',
    description:
      'A client broke the protocol: bad syntax or sequence, unknown or non-SMTP command, BDAT, long line, pipelining violation, header as command, too many junk commands.',
  },
  'smtp.timeout': {
    level: 'info',
    description: 'A session was closed for time: idle, a request or message too slow, a stalled TLS handshake, the session limit.',
  },
  'smtp.data.rejected': { level: 'info', description: 'A message was refused after DATA; the gateway never owned it.' },
  'smtp.data.aborted': { level: 'info', description: 'A client went away or timed out during DATA; nothing was stored.' },
  'smtp.close': { level: 'info', description: 'A session ended: duration, messages, errors.' },
  'message.accepted': { level: 'info', description: 'A message was spooled and answered 250; carries its verdict.' },
  'message.quarantined': { level: 'info', description: 'A copy of a message was held in quarantine for recipients.' },
  'quarantine.released': { level: 'info', description: 'A held copy was released to its recipient; carries who did it and the new queue id.' },
  'quarantine.deleted': { level: 'info', description: 'A held copy was deleted; carries who did it.' },
  'quarantine.expired': { level: 'debug', description: 'The purge job deleted held copies past their retention; carries how many.' },
  'quarantine.sender_listed': {
    level: 'info',
    description: 'A sender was allowed or blocked from the quarantine (for one recipient, a domain, or everyone); carries who did it and the policy.',
  },
  'quarantine.reported': { level: 'info', description: 'A held message was reported as spam or not spam and taught to the classifier.' },
  'quarantine.link_refused': {
    level: 'warn',
    description: 'A quarantine link was refused: forged or altered, expired, already used, or for a copy no longer held.',
  },
  'quarantine.digest_sent': { level: 'info', description: 'A quarantine digest was queued for a recipient; carries how many entries.' },
  'outbound.accepted': {
    level: 'info',
    description: 'The outbound listener took a message of ours for other domains; carries the sender, the recipients and how many correspondents it taught.',
  },
  'outbound.rejected': {
    level: 'info',
    description: 'The outbound listener refused a client, a sender outside our domains, a recipient or a message; carries the reason.',
  },
  'check.failed': { level: 'warn', description: 'An analysis check threw or timed out.' },
  'relay.attempt': { level: 'info', description: 'One delivery attempt to the downstream, local mailbox or smarthost.' },
  'relay.delivered': { level: 'debug', description: 'Recipients of a message were delivered.' },
  'relay.deferred': { level: 'info', description: 'Recipients failed temporarily; the next attempt time is set.' },
  'relay.bounced': { level: 'warn', description: 'Recipients failed permanently or expired; a DSN was queued.' },
  'relay.recovered': { level: 'info', description: 'Spool entries found at start-up and resumed or discarded (with the torn tails and damaged regions of the segment files, if any).' },
  'queue.retry_requested': {
    level: 'info',
    description:
      'An admin made waiting recipients due now (postern queue retry|flush, the center): one message (scope message, with its id) or all (scope all); carries how many recipients and who did it.',
  },
  'auth.failed': {
    level: 'info',
    description:
      'A mail client failed to log in (IMAP, POP3, submission, webmail); carries the user and the protocol, and refused_by (a policy id) when a protect policy refused it without asking the server.',
  },
  'auth.succeeded': { level: 'debug', description: 'A mail client logged in; carries the user and the protocol.' },
  'imap.connect': { level: 'debug', description: 'An IMAP client connected to the monitor proxy; carries the session id and TLS.' },
  'imap.connect.refused': { level: 'info', description: 'An IMAP client was refused at connect by a live block policy on its address.' },
  'imap.login.refused': {
    level: 'info',
    description: 'An IMAP login was refused by Postern without asking the server (a block policy on the address or the user); carries the user and the policy.',
  },
  'imap.protocol_error': {
    level: 'info',
    description:
      'An IMAP client broke the protocol: invalid tag or syntax, bare CR, long line, oversized literal, a command needing login, a refused command, bad AUTHENTICATE data, too many invalid commands.',
  },
  'imap.upstream_error': {
    level: 'warn',
    description: 'The IMAP server behind the proxy was unreachable, slow, or answered unsafely (PREAUTH, bytes injected after STARTTLS, no LITERAL+).',
  },
  'imap.close': {
    level: 'info',
    description: 'An IMAP proxy session ended: user, TLS, duration, commands, errors, octets each way, and why it ended.',
  },
  'pop3.connect': { level: 'debug', description: 'A POP3 client connected to the monitor proxy; carries the session id and TLS.' },
  'pop3.connect.refused': { level: 'info', description: 'A POP3 client was refused at connect by a live block policy on its address.' },
  'pop3.login.refused': {
    level: 'info',
    description: 'A POP3 login was refused by Postern without asking the server (a block policy on the address or the user); carries the user and the policy.',
  },
  'pop3.protocol_error': {
    level: 'info',
    description:
      'A POP3 client broke the protocol: unknown command, bad arguments, bare CR, NUL, long line, a command needing login, APOP, bad AUTH data, too many invalid commands, bytes after STLS.',
  },
  'pop3.upstream_error': {
    level: 'warn',
    description: 'The POP3 server behind the proxy was unreachable, slow, or answered unsafely (bad greeting, bytes injected after STLS).',
  },
  'pop3.close': {
    level: 'info',
    description: 'A POP3 proxy session ended: user, TLS, duration, commands, errors, octets each way, and why it ended.',
  },
  'submission.connect': { level: 'debug', description: 'A submission client connected to the monitor proxy; carries the session id and TLS.' },
  'submission.connect.refused': { level: 'info', description: 'A submission client was refused at connect by a live block policy on its address.' },
  'submission.login.refused': {
    level: 'info',
    description: 'A submission login was refused by Postern without asking the server (a block policy on the address or the user); carries the user and the policy.',
  },
  'submission.protocol_error': {
    level: 'info',
    description:
      'A submission client broke the protocol: unknown command, bad syntax or sequence, bare CR, NUL, long line, a command needing login, BDAT, bad AUTH data, too many invalid commands, bytes after STARTTLS.',
  },
  'submission.upstream_error': {
    level: 'warn',
    description: 'The submission server behind the proxy was unreachable, slow, or answered unsafely (bad greeting, no AUTH PLAIN, bytes injected after STARTTLS).',
  },
  'submission.close': {
    level: 'info',
    description: 'A submission proxy session ended: user, TLS, duration, commands, errors, octets each way, and why it ended.',
  },
  'audit.session': {
    level: 'info',
    description:
      'An audited mailbox user\'s session through the monitor proxy: at login (client address, TLS, protocol, session id) and at its end (why, duration, commands, octets each way).',
  },
  'audit.command': {
    level: 'info',
    description:
      'An audited user\'s mailbox action: IMAP SELECT, EXAMINE, FETCH, STORE, COPY, MOVE, EXPUNGE, APPEND, CLOSE, LOGOUT (with the set, items, flags, target or size), POP3 RETR, TOP, DELE, QUIT (with the message number), submission MAIL FROM, RCPT TO, DATA (with the address, the size and Message-ID, and the server\'s reply).',
  },
  'audit.user_added': {
    level: 'info',
    description: 'An admin made a mailbox user (an address, *@domain or *) audited through the center or postern audit users; carries the pattern and who did it.',
  },
  'audit.user_removed': {
    level: 'info',
    description: 'An admin stopped auditing a mailbox user added through the center or postern audit users; carries the pattern and who did it.',
  },
  'settings.changed': {
    level: 'info',
    description: "An admin changed a detector's switch or threshold at run time (the center or postern detectors), or reset it to the file's value; carries the key, the old and new values and who did it.",
  },
  'trends.finding': {
    level: 'warn',
    description: 'A trend detector found an attack or anomaly and wrote or extended a live policy; carries the policy and its evidence.',
  },
  'trends.lag': { level: 'warn', description: 'The trend analyzer fell more than a second behind the event stream.' },
  'trends.alert': {
    level: 'warn',
    description: 'A trend detector saw something a person should look at that is not a policy: a login that succeeded after a run of failures (likely compromise), a login from a network never seen for that user.',
  },
  'outbreak.declared': {
    level: 'warn',
    description: 'A similarity cluster was declared an outbreak (the time-zero rule or an admin); carries the cluster, the policy, the rule\'s figures.',
  },
  'retro.quarantined': { level: 'warn', description: 'A copy of an outbreak cluster still in the spool was quarantined instead of relayed.' },
  'retro.pulled_back': {
    level: 'warn',
    description: 'A copy of an outbreak cluster already delivered was taken back (from the local mailbox or over IMAP) and quarantined; carries where and how.',
  },
  'retro.failed': { level: 'error', description: 'A delivered copy of an outbreak cluster could not be pulled back; carries the error. It is tried again.' },
  'retro.forwarded': { level: 'warn', description: 'A copy of an outbreak cluster left again through the outbound path; carries the external recipients reached.' },
  'retro.notified': { level: 'info', description: 'Recipients or the admin were told what was pulled back for an outbreak.' },
  'outbound.outbreak_refused': { level: 'warn', description: 'Outbound mail that is a copy of an outbreak cluster was refused (550 5.7.1).' },
  'similarity.held': {
    level: 'info',
    description: 'A suspicious message of a brand-new cluster was deferred (outbreak.hold_s) so that its retry meets a classified cluster.',
  },
  'cluster.marked': {
    level: 'info',
    description: 'An admin marked a similarity cluster safe or bad (postern clusters mark, the API); carries the cluster, the verdict, the policy and who did it.',
  },
  'web.login': { level: 'info', description: 'An account signed in to the center (form or API); carries the name, the role and the address.' },
  'web.login_failed': {
    level: 'warn',
    description: 'A sign-in to the center failed: unknown name, wrong password, disabled account, or too many failures (rate_limited); carries the name tried and the address, never the password.',
  },
  'web.account_changed': {
    level: 'info',
    description:
      'An admin added, changed (role, addresses), disabled, enabled or removed a center account, set its password, or made or revoked one of its API tokens through the center; or an account changed its own password. Carries the operation, the account, what changed, how many sessions ended and who did it, never a password or a token.',
  },
  'web.password_change_failed': {
    level: 'warn',
    description: "An account's change of its own password was refused: wrong current password, or too many of them (rate_limited); carries the name and the address, never a password.",
  },
  'policy.changed': {
    level: 'info',
    description: 'An admin added, lifted, pinned, unpinned or extended a live policy through the API; carries the operation, the policy and who did it.',
  },
  'store.error': { level: 'error', description: 'The store or the spool failed an operation.' },
} as const;

export type EventType = keyof typeof EVENT_TYPES;

export interface PosternEvent {
  type: EventType;
  /** Milliseconds since the epoch. */
  ts: number;
  ip?: string | null;
  conn_id?: string | null;
  msg_id?: string | null;
  data: Record<string, unknown>;
}

/** `ts` defaults to now; a source that reports after the fact (webmail) gives its own, never a future one. */
export type Emit = (type: EventType, fields: Omit<PosternEvent, 'type' | 'ts' | 'data'> & { data?: Record<string, unknown>; ts?: number }) => void;
