// Creates the store's tables and indexes, the same on SQLite and PostgreSQL.
import { sql, type Kysely } from 'kysely';
import type { DB } from './schema.ts';
import type { Dialect } from './db.ts';

export async function migrate(db: Kysely<DB>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  const real = dialect === 'postgres' ? 'double precision' : 'real';
  await db.schema
    .createTable('messages')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('message_id', 'text')
    .addColumn('received_at', big, (c) => c.notNull())
    .addColumn('conn_id', 'text')
    .addColumn('client_ip', 'text')
    .addColumn('helo', 'text')
    .addColumn('mail_from', 'text', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('score', real, (c) => c.notNull())
    .addColumn('symbols', 'text', (c) => c.notNull())
    .addColumn('verdict', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('recipients')
    .ifNotExists()
    .addColumn('msg_id', 'text', (c) => c.notNull())
    .addColumn('rcpt', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('reasons', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('route', 'text', (c) => c.notNull())
    .addColumn('deliver_to', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', big, (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('updated_at', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('recipients_pk', ['msg_id', 'rcpt'])
    .execute();
  const events = db.schema.createTable('events').ifNotExists();
  await (dialect === 'postgres'
    ? events.addColumn('id', 'bigserial', (c) => c.primaryKey())
    : events.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
  )
    .addColumn('ts', big, (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('conn_id', 'text')
    .addColumn('msg_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('policies')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('target_kind', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('evidence', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('expires_at', big)
    .addColumn('pinned', 'integer', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('quarantine')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('msg_id', 'text', (c) => c.notNull())
    .addColumn('rcpt', 'text', (c) => c.notNull())
    .addColumn('blob', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('score', real, (c) => c.notNull())
    .addColumn('symbols', 'text', (c) => c.notNull())
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('expires_at', big, (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('policy', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('acted_at', big)
    .addColumn('acted_by', 'text')
    .execute();
  // Stores made before these columns existed get them added.
  await addMissingColumn(db, 'quarantine', 'policy', `text not null default '[]'`);
  await addMissingColumn(db, 'quarantine', 'acted_at', big);
  await addMissingColumn(db, 'quarantine', 'acted_by', 'text');
  const idx: [string, keyof DB, string[]][] = [
    ['messages_message_id', 'messages', ['message_id']],
    ['messages_status', 'messages', ['status']],
    ['recipients_due', 'recipients', ['status', 'next_attempt_at']],
    ['events_msg', 'events', ['msg_id']],
    ['events_conn', 'events', ['conn_id']],
    ['events_ts', 'events', ['ts']],
    ['quarantine_rcpt', 'quarantine', ['rcpt', 'created_at']],
    ['quarantine_msg', 'quarantine', ['msg_id']],
  ];
  for (const [name, table, cols] of idx) {
    await db.schema.createIndex(name).ifNotExists().on(table).columns(cols).execute();
  }
  if (dialect === 'postgres') await sql`select 1`.execute(db);
  // The statistical classifier's model (analysis/bayes/store.ts).
  await db.schema
    .createTable('bayes_tokens')
    .ifNotExists()
    .addColumn('token', 'text', (c) => c.primaryKey())
    .addColumn('spam', 'integer', (c) => c.notNull())
    .addColumn('ham', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('bayes_learned')
    .ifNotExists()
    .addColumn('digest', 'text', (c) => c.primaryKey())
    .addColumn('class', 'text', (c) => c.notNull())
    .addColumn('learned_at', big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('bayes_state')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('spam_messages', 'integer', (c) => c.notNull())
    .addColumn('ham_messages', 'integer', (c) => c.notNull())
    .addColumn('version', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();
  await db
    .insertInto('bayes_state')
    .values({ id: 1, spam_messages: 0, ham_messages: 0, version: 0, updated_at: 0 })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  // The data matrix: per-source metadata, the analyzer's cursor, hourly aggregates of aged-out events.
  await db.schema
    .createTable('source_stats')
    .ifNotExists()
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('first_seen', big, (c) => c.notNull())
    .addColumn('last_seen', big, (c) => c.notNull())
    .addColumn('connections', big, (c) => c.notNull())
    .addColumn('messages', big, (c) => c.notNull())
    .addColumn('recipients', big, (c) => c.notNull())
    .addColumn('unknown_recipients', big, (c) => c.notNull())
    .addColumn('refused', big, (c) => c.notNull())
    .addColumn('quarantined', big, (c) => c.notNull())
    .addColumn('delivered', big, (c) => c.notNull())
    .addColumn('protocol_errors', big, (c) => c.notNull())
    .addColumn('score_sum', real, (c) => c.notNull())
    .addColumn('score_n', big, (c) => c.notNull())
    .addColumn('score_hist', 'text', (c) => c.notNull())
    .addColumn('actions', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('source_stats_pk', ['kind', 'key'])
    .execute();
  await db.schema
    .createTable('analyzer_state')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('last_event_id', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('event_rollups')
    .ifNotExists()
    .addColumn('hour', big, (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('count', big, (c) => c.notNull())
    .addColumn('ips', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('event_rollups_pk', ['hour', 'type'])
    .execute();
  // The quarantine's links and digests (quarantine/tokens.ts, quarantine/digest.ts).
  await db.schema
    .createTable('quarantine_tokens')
    .ifNotExists()
    .addColumn('nonce', 'text', (c) => c.primaryKey())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('quarantine_id', 'text', (c) => c.notNull())
    .addColumn('used_at', big, (c) => c.notNull())
    .addColumn('expires_at', big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('digest_state')
    .ifNotExists()
    .addColumn('rcpt', 'text', (c) => c.primaryKey())
    .addColumn('last_sent_at', big, (c) => c.notNull())
    .addColumn('last_count', 'integer', (c) => c.notNull())
    .execute();
  // What outbound mail teaches about the organisation's correspondents (analysis/checks/business).
  await db.schema
    .createTable('correspondents')
    .ifNotExists()
    .addColumn('internal', 'text', (c) => c.notNull())
    .addColumn('external', 'text', (c) => c.notNull())
    .addColumn('messages', big, (c) => c.notNull())
    .addColumn('first_seen', big, (c) => c.notNull())
    .addColumn('last_seen', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('correspondents_pk', ['internal', 'external'])
    .execute();
  await db.schema
    .createTable('sent_messages')
    .ifNotExists()
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('recipients', 'text', (c) => c.notNull())
    .addColumn('sent_at', big, (c) => c.notNull())
    .execute();
  // The addresses each mailbox user logged in from (trends/known-logins.ts), for protect policies.
  await db.schema
    .createTable('mailbox_logins')
    .ifNotExists()
    .addColumn('user', 'text', (c) => c.notNull())
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('first_ok', big, (c) => c.notNull())
    .addColumn('last_ok', big, (c) => c.notNull())
    .addColumn('logins', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('mailbox_logins_pk', ['user', 'ip'])
    .execute();
  // The similarity index's window (similarity/store.ts).
  await db.schema
    .createTable('similarity_entries')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('ts', big, (c) => c.notNull())
    .addColumn('cluster', big, (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('facts', 'text', (c) => c.notNull())
    .execute();
  // The clusters' summaries (trends/detectors/outbreak.ts), for `postern clusters` and the API.
  await db.schema
    .createTable('clusters')
    .ifNotExists()
    .addColumn('id', big, (c) => c.primaryKey())
    .addColumn('first_seen', big, (c) => c.notNull())
    .addColumn('last_seen', big, (c) => c.notNull())
    .addColumn('members', big, (c) => c.notNull())
    .addColumn('ips', big, (c) => c.notNull())
    .addColumn('sender_domains', big, (c) => c.notNull())
    .addColumn('recipients', big, (c) => c.notNull())
    .addColumn('suspicious', big, (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('declared_at', big)
    .addColumn('declared_by', 'text')
    .addColumn('subject', 'text')
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();
  // The center's accounts, their API tokens and sign-in sessions (center/auth/).
  await db.schema
    .createTable('accounts')
    .ifNotExists()
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('addresses', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('account_tokens')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('last_used_at', big)
    .addColumn('expires_at', big)
    .execute();
  await db.schema
    .createTable('web_sessions')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('expires_at', big, (c) => c.notNull())
    .addColumn('csrf', 'text', (c) => c.notNull())
    .execute();
  // Audited mailbox users added through the center or the CLI (monitor/audit/users.ts).
  await db.schema
    .createTable('audit_users')
    .ifNotExists()
    .addColumn('pattern', 'text', (c) => c.primaryKey())
    .addColumn('added_by', 'text', (c) => c.notNull())
    .addColumn('added_at', big, (c) => c.notNull())
    .execute();
  // Detector thresholds changed through the center or `postern detectors` (config/overrides.ts).
  await db.schema
    .createTable('settings_overrides')
    .ifNotExists()
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('set_by', 'text', (c) => c.notNull())
    .addColumn('set_at', big, (c) => c.notNull())
    .execute();
  const idx2: [string, keyof DB, string[]][] = [
    ['quarantine_status', 'quarantine', ['status', 'expires_at']],
    ['correspondents_external', 'correspondents', ['external']],
    ['sent_messages_at', 'sent_messages', ['sent_at']],
    ['policies_target', 'policies', ['target_kind', 'target']],
    ['source_stats_seen', 'source_stats', ['last_seen']],
    ['mailbox_logins_last', 'mailbox_logins', ['last_ok']],
    ['similarity_entries_ts', 'similarity_entries', ['ts']],
    ['similarity_entries_cluster', 'similarity_entries', ['cluster']],
    ['clusters_last_seen', 'clusters', ['last_seen']],
    // The center's message search by time (api-messages.ts) and retention reads.
    ['messages_received_at', 'messages', ['received_at']],
    ['account_tokens_account', 'account_tokens', ['account']],
    ['web_sessions_account', 'web_sessions', ['account']],
    ['web_sessions_expires', 'web_sessions', ['expires_at']],
  ];
  for (const [name, table, cols] of idx2) {
    await db.schema.createIndex(name).ifNotExists().on(table).columns(cols).execute();
  }
}

/** Adds a column to a table created before it existed; a no-op when it is there. */
async function addMissingColumn(db: Kysely<DB>, table: keyof DB, column: string, type: string): Promise<void> {
  try {
    await sql`alter table ${sql.table(table)} add column ${sql.ref(column)} ${sql.raw(type)}`.execute(db);
  } catch (err) {
    if (!/duplicate column|already exists/i.test((err as Error).message)) throw err;
  }
}
