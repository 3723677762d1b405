// GET /api/v1/openapi.json: an OpenAPI 3.1 description of every /api/v1 route. Parameters and bodies come from the
// routes' own zod schemas where they export them (z.toJSONSchema), written here otherwise; a test holds the
// document to the routes the server registers.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Role } from './auth/guard.ts';
import { MessageParams, MessagesQuery } from './api-messages.ts';
import { ExtendBody, PoliciesQuery, PolicyBody, PolicyParams, UnpinBody } from './api-policies.ts';
import { EventsQuery, StreamQuery } from './api-events.ts';
import { AuditUserBody, AuditUserParams } from './api-audit.ts';
import { MailboxesQuery, MailboxParams, MailboxQuery } from './api-mailboxes.ts';
import { AlertsQuery } from './api-alerts.ts';
import { AccountBody, AccountParams, AccountPatch, AccountsQuery, OwnPasswordBody, PasswordBody, TokenBody, TokenParams } from './api-accounts.ts';
import { SourcesQuery } from './api-sources.ts';
import { QueueParams, QueueQuery } from './api-queue.ts';
import { DetectorParams, DetectorPatch } from './api-settings.ts';
import type { WebDeps } from './server.ts';

export const OPENAPI_PATH = '/api/v1/openapi.json';

type Json = Record<string, unknown>;
type Schema = z.ZodType | Json;

interface Op {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** fastify's form: /api/v1/messages/:id */
  path: string;
  tag: string;
  summary: string;
  /** Who may call it; 'key' for routes with credentials of their own (Dovecot, webmail), 'anyone' for none. */
  roles: Role[] | 'key' | 'anyone';
  query?: Schema;
  params?: Schema;
  body?: Schema;
  /** What a success answers: a description, and its media type when not JSON. */
  ok: string;
  type?: string;
  status?: number;
}

const json = (s: Schema): Json => {
  if (!(s instanceof z.ZodType)) return s;
  const { $schema: _, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
};

const obj = (properties: Record<string, Json>, required: string[] = []): Json => ({ type: 'object', properties, required, additionalProperties: false });
const str = (description: string, extra: Json = {}): Json => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Json = {}): Json => ({ type: 'integer', description, ...extra });
const TIME = 'Milliseconds since the epoch or an ISO 8601 time.';

const quarantineList = obj({
  rcpt: str('Recipient, exactly.'),
  domain: str("Recipient's domain."),
  sender: str('Envelope sender.'),
  status: str('Entry status (default held).', { enum: ['held', 'released', 'deleted', 'expired', 'any'] }),
  subject: str('Substring of the subject, case-insensitive.'),
  since: str(TIME),
  until: str(TIME),
  limit: int('Items per page.', { minimum: 1, default: 50 }),
  offset: int('Items to skip.', { minimum: 0, default: 0 }),
});
const quarantineId = obj({ id: str('Quarantine entry id: QUEUEID.recipient.') }, ['id']);
const clusterId = obj({ id: str('Cluster id (a whole number).') }, ['id']);
const empty = obj({});

/** Every /api/v1 route. */
export const OPERATIONS: Op[] = [
  { method: 'get', path: '/api/v1/quarantine', tag: 'quarantine', summary: 'List quarantined copies (a user: its own addresses).', roles: ['admin', 'auditor', 'user'], query: quarantineList, ok: '{ items, total, limit, offset }' },
  { method: 'get', path: '/api/v1/quarantine/:id', tag: 'quarantine', summary: 'One quarantined copy.', roles: ['admin', 'auditor', 'user'], params: quarantineId, ok: 'The entry.' },
  { method: 'get', path: '/api/v1/quarantine/:id/raw', tag: 'quarantine', summary: 'The held message as it arrived.', roles: ['admin', 'auditor', 'user'], params: quarantineId, ok: 'The message.', type: 'message/rfc822' },
  { method: 'post', path: '/api/v1/quarantine/:id/release', tag: 'quarantine', summary: 'Release the copy to its recipient.', roles: ['admin', 'user'], params: quarantineId, body: empty, ok: '{ entry, queue_id }' },
  { method: 'post', path: '/api/v1/quarantine/:id/delete', tag: 'quarantine', summary: 'Delete the copy.', roles: ['admin', 'user'], params: quarantineId, body: empty, ok: '{ entry }' },
  ...(['allow', 'block'] as const).map(
    (k): Op => ({
      method: 'post',
      path: `/api/v1/quarantine/:id/${k}`,
      tag: 'quarantine',
      summary: `${k === 'allow' ? 'Allow' : 'Block'} the sender for the recipient, its domain or everyone.`,
      roles: ['admin', 'user'],
      params: quarantineId,
      body: obj({ scope: str('Whose list.', { enum: ['user', 'domain', 'global'] }) }, ['scope']),
      ok: '{ policy }',
    }),
  ),
  { method: 'post', path: '/api/v1/quarantine/:id/report', tag: 'quarantine', summary: 'Report as spam or not spam (teaches the classifier).', roles: ['admin', 'user'], params: quarantineId, body: obj({ class: str('', { enum: ['spam', 'ham'] }) }, ['class']), ok: 'What was learned.' },
  {
    method: 'get',
    path: '/api/v1/clusters',
    tag: 'clusters',
    summary: 'List similarity clusters.',
    roles: ['admin', 'auditor'],
    query: obj({ state: str('Cluster state.'), since: str(TIME), limit: int('Items.', { minimum: 1, maximum: 1000, default: 100 }) }),
    ok: '{ items }',
  },
  { method: 'get', path: '/api/v1/clusters/:id', tag: 'clusters', summary: 'One cluster: members, what was done to each copy, where copies went.', roles: ['admin', 'auditor'], params: clusterId, query: obj({ limit: int('Members.', { minimum: 1, maximum: 1000, default: 1000 }) }), ok: 'The cluster.' },
  {
    method: 'post',
    path: '/api/v1/clusters/:id/mark',
    tag: 'clusters',
    summary: 'Mark a cluster safe or bad.',
    roles: ['admin'],
    params: clusterId,
    body: obj({ verdict: str('', { enum: ['safe', 'bad'] }), reason: str('Why.'), action: str('For bad: what to do with its copies.', { enum: ['quarantine', 'block'] }) }, ['verdict']),
    ok: '{ cluster, verdict, policy }',
  },
  { method: 'get', path: '/api/v1/messages', tag: 'messages', summary: 'List messages, newest first, with filters and a cursor.', roles: ['admin', 'auditor'], query: MessagesQuery, ok: '{ items, next_cursor, limit }' },
  {
    method: 'get',
    path: '/api/v1/messages/:id',
    tag: 'messages',
    summary: "A message's whole story: connection, symbols, recipients with decisions and policies, deliveries, quarantine, retroactive actions.",
    roles: ['admin', 'auditor'],
    params: MessageParams,
    ok: 'The story.',
  },
  {
    method: 'get',
    path: '/api/v1/queue',
    tag: 'queue',
    summary: 'Recipients waiting for delivery (queued or deferred), oldest first, with filters and a cursor, and a summary of the whole queue.',
    roles: ['admin', 'auditor'],
    query: QueueQuery,
    ok: '{ items: [{ queue_id, rcpt, deliver_to, route, status, attempts, next_attempt_at, last_error, message_id, mail_from, subject, size, received_at, age_ms }], next_cursor, limit, summary: { recipients, messages, with_errors, oldest_received_at } }',
  },
  {
    method: 'post',
    path: '/api/v1/queue/:id/retry',
    tag: 'queue',
    summary: "Make a message's waiting recipients due now: the relay tries them at its next poll (postern queue retry). 409 not_waiting when none is waiting.",
    roles: ['admin'],
    params: QueueParams,
    body: empty,
    ok: '{ queue_id, recipients }',
  },
  { method: 'post', path: '/api/v1/queue/flush', tag: 'queue', summary: 'Make every waiting recipient due now (postern queue flush).', roles: ['admin'], body: empty, ok: '{ recipients }' },
  { method: 'get', path: '/api/v1/policies', tag: 'policies', summary: 'List live policies, newest first.', roles: ['admin', 'auditor'], query: PoliciesQuery, ok: '{ items, next_cursor, limit }' },
  { method: 'get', path: '/api/v1/policies/:id', tag: 'policies', summary: 'One policy.', roles: ['admin', 'auditor'], params: PolicyParams, ok: 'The policy.' },
  { method: 'post', path: '/api/v1/policies', tag: 'policies', summary: 'Add a policy.', roles: ['admin'], body: PolicyBody, ok: 'The policy.', status: 201 },
  { method: 'post', path: '/api/v1/policies/:id/lift', tag: 'policies', summary: 'Lift (remove) a policy.', roles: ['admin'], params: PolicyParams, body: empty, ok: '{ lifted }' },
  { method: 'post', path: '/api/v1/policies/:id/pin', tag: 'policies', summary: 'Pin a policy: it never expires and the analyzer leaves it alone.', roles: ['admin'], params: PolicyParams, body: empty, ok: 'The policy.' },
  { method: 'post', path: '/api/v1/policies/:id/unpin', tag: 'policies', summary: 'Unpin a policy, optionally with an expiry.', roles: ['admin'], params: PolicyParams, body: UnpinBody, ok: 'The policy.' },
  { method: 'post', path: '/api/v1/policies/:id/extend', tag: 'policies', summary: 'Set the expiry of an unpinned policy (reviving an expired one).', roles: ['admin'], params: PolicyParams, body: ExtendBody, ok: 'The policy.' },
  { method: 'get', path: '/api/v1/events', tag: 'events', summary: 'List stored events, newest first, with filters and a cursor.', roles: ['admin', 'auditor'], query: EventsQuery, ok: '{ items, next_cursor, limit }' },
  {
    method: 'get',
    path: '/api/v1/stream',
    tag: 'events',
    summary: 'New events as server-sent events: `data: <event JSON>`; `event: dropped` when a slow client missed some; a comment line every 15 s.',
    roles: ['admin', 'auditor'],
    query: StreamQuery,
    ok: 'The stream.',
    type: 'text/event-stream',
  },
  {
    method: 'get',
    path: '/api/v1/audit',
    tag: 'audit',
    summary: "An audited mailbox user's trail (a user account: its own addresses).",
    roles: ['admin', 'auditor', 'user'],
    query: obj({ user: str('The mailbox user.'), since: str('A duration back from now (30m, 24h, 7d) or an ISO time; default 24 h.'), session: str('One session.'), format: str('', { enum: ['json', 'csv', 'text'], default: 'json' }) }, ['user']),
    ok: 'The trail.',
  },
  { method: 'get', path: '/api/v1/audit/users', tag: 'audit', summary: 'Who is audited: each pattern with its source (config, or who added it and when).', roles: ['admin', 'auditor'], ok: '{ items }' },
  { method: 'post', path: '/api/v1/audit/users', tag: 'audit', summary: 'Audit a mailbox user: an address, *@domain or *; every proxy follows within seconds.', roles: ['admin'], body: AuditUserBody, ok: 'The audited user (201 when added, 200 when it was there).', status: 201 },
  {
    method: 'delete',
    path: '/api/v1/audit/users/:pattern',
    tag: 'audit',
    summary: 'Stop auditing a pattern added through the API or the CLI (409 for a pattern of monitor.audit.users: edit the config).',
    roles: ['admin'],
    params: AuditUserParams,
    ok: '{ removed }',
  },
  { method: 'get', path: '/api/v1/mailboxes', tag: 'mailboxes', summary: 'Mailbox users seen in login events, most recent first.', roles: ['admin', 'auditor'], query: MailboxesQuery, ok: '{ items, next_cursor, limit, truncated }' },
  {
    method: 'get',
    path: '/api/v1/mailboxes/:user',
    tag: 'mailboxes',
    summary: "A mailbox user's activity: known login addresses, latest logins and failures, attacks on it, whether audited, latest audited sessions.",
    roles: ['admin', 'auditor'],
    params: MailboxParams,
    query: MailboxQuery,
    ok: '{ user, audited, audited_by, known_logins, auth, attacks, audit }',
  },
  { method: 'get', path: '/api/v1/alerts', tag: 'alerts', summary: 'Findings, declared outbreaks, failed pull-backs and store errors, newest first, each with a severity and a summary.', roles: ['admin', 'auditor'], query: AlertsQuery, ok: '{ items, next_cursor, limit }' },
  {
    method: 'get',
    path: '/api/v1/sources',
    tag: 'sources',
    summary: 'Sending sources from the data matrix (addresses, networks, HELO names, sender domains, senders), ranked by a count, each with its counts, shares and the active policies acting on it.',
    roles: ['admin', 'auditor'],
    query: SourcesQuery,
    ok: '{ items: [{ kind, key, network, first_seen, last_seen, connections, messages, recipients, unknown_recipients, refused, quarantined, delivered, refused_share, quarantined_share, unknown_share, score_avg, policies: [{ id, action, target_kind, target, expires_at, for }] }], next_cursor, limit }',
  },
  {
    method: 'get',
    path: '/api/v1/settings',
    tag: 'settings',
    summary: 'The effective configuration by section: each key with its value, default, whether it was changed and its description; secrets as "(set)", "(from env NAME)" or "(not set)".',
    roles: ['admin', 'auditor'],
    ok: '{ config_file, data_dir, sections: [{ name, keys: [{ key, value, default, changed, description, type, secret }] }] }',
  },
  {
    method: 'get',
    path: '/api/v1/detectors',
    tag: 'settings',
    summary: "The trend analyzer's detectors: each one's switch, thresholds from the effective configuration (with the file's value and who changed it at run time), and the policies it wrote in the last 24 hours.",
    roles: ['admin', 'auditor'],
    ok: '{ analyzer_enabled, items: [{ name, summary, switch, enabled, switch_editable, switch_override, thresholds: [{ key, value, default, file_value, override, editable, changed, description, type }], policies_24h }] }',
  },
  {
    method: 'patch',
    path: '/api/v1/detectors/:name',
    tag: 'settings',
    summary: "Change a detector's switch and thresholds at run time, or reset them to the config file's (null); checked by the config schema, in force at the analyzer and every gateway within seconds, recorded as settings.changed events.",
    roles: ['admin'],
    params: DetectorParams,
    body: DetectorPatch,
    ok: '{ detector, changed: [{ key, from, to }] }',
  },
  { method: 'get', path: '/api/v1/accounts', tag: 'accounts', summary: 'List the center\'s accounts by name, with their token and live session counts.', roles: ['admin'], query: AccountsQuery, ok: '{ items: [{ name, role, addresses, created_at, disabled, tokens, sessions }], next_cursor, limit }' },
  { method: 'post', path: '/api/v1/accounts', tag: 'accounts', summary: 'Add an account (409 exists when the name is taken).', roles: ['admin'], body: AccountBody, ok: 'The account.', status: 201 },
  { method: 'get', path: '/api/v1/accounts/:name', tag: 'accounts', summary: 'One account.', roles: ['admin'], params: AccountParams, ok: '{ name, role, addresses, created_at, disabled, tokens, sessions }' },
  {
    method: 'patch',
    path: '/api/v1/accounts/:name',
    tag: 'accounts',
    summary: 'Change the role, the addresses or whether disabled; disabling ends its sessions. 409 last_admin for the last enabled admin, 409 self for your own account.',
    roles: ['admin'],
    params: AccountParams,
    body: AccountPatch,
    ok: 'The account, with sessions_ended.',
  },
  { method: 'delete', path: '/api/v1/accounts/:name', tag: 'accounts', summary: 'Remove an account with its tokens and sessions (409 last_admin, 409 self).', roles: ['admin'], params: AccountParams, ok: '{ removed }' },
  { method: 'post', path: '/api/v1/accounts/:name/password', tag: 'accounts', summary: 'Set an account\'s password; its sessions end.', roles: ['admin'], params: AccountParams, body: PasswordBody, ok: '{ name, sessions_ended }' },
  { method: 'get', path: '/api/v1/accounts/:name/tokens', tag: 'accounts', summary: 'An account\'s API tokens (never the secrets).', roles: ['admin'], params: AccountParams, ok: '{ items: [{ id, account, label, created_at, last_used_at, expires_at }] }' },
  { method: 'post', path: '/api/v1/accounts/:name/tokens', tag: 'accounts', summary: 'Make an API token for an account: the token is in this answer only.', roles: ['admin'], params: AccountParams, body: TokenBody, ok: '{ token, id, account, label, created_at, last_used_at, expires_at }', status: 201 },
  { method: 'delete', path: '/api/v1/accounts/:name/tokens/:id', tag: 'accounts', summary: 'Revoke an account\'s API token.', roles: ['admin'], params: TokenParams, ok: '{ revoked }' },
  {
    method: 'post',
    path: '/api/v1/me/password',
    tag: 'session',
    summary: 'Change your own password with the current one; your other sessions end (403 wrong_password, 429 after five wrong ones).',
    roles: ['admin', 'auditor', 'user'],
    body: OwnPasswordBody,
    ok: '{ name, sessions_ended }',
  },
  { method: 'post', path: '/api/v1/session', tag: 'session', summary: 'Sign in: sets the session cookie and answers its CSRF token.', roles: 'anyone', body: obj({ name: str('Account name.'), password: str('Password.') }, ['name', 'password']), ok: '{ name, role, addresses, csrf, expires_at }' },
  { method: 'get', path: '/api/v1/session', tag: 'session', summary: 'Who is signed in.', roles: ['admin', 'auditor', 'user'], ok: '{ name, role, kind, addresses, csrf? }' },
  { method: 'delete', path: '/api/v1/session', tag: 'session', summary: 'Sign out.', roles: ['admin', 'auditor', 'user'], ok: '{ ended }' },
  {
    method: 'post',
    path: '/api/v1/dovecot/auth-policy',
    tag: 'integrations',
    summary: "Dovecot's auth policy requests (auth_policy_server_url; monitor.auth_policy), with ?command=allow or report.",
    roles: 'key',
    query: { type: 'object', properties: { command: str('', { enum: ['allow', 'report'] }) }, required: ['command'] },
    body: { type: 'object', description: 'auth_policy_request_attributes: login, remote, protocol, session_id; success and policy_reject in a report.' },
    ok: '{ status, msg }',
  },
  {
    method: 'post',
    path: '/api/v1/collect/webmail',
    tag: 'integrations',
    summary: "A webmail's reports of its users' logins, logouts, messages sent and read (monitor.webmail); each answer says what the live policies say.",
    roles: 'key',
    body: { type: 'object', description: 'A batch of webmail events.' },
    ok: 'One result per event.',
  },
  { method: 'get', path: OPENAPI_PATH, tag: 'meta', summary: 'This document.', roles: 'anyone', ok: 'OpenAPI 3.1.' },
];

const ERROR = obj({ error: obj({ code: str('Stable code: bad_request, unauthorized, forbidden, not_found, …'), message: str('What is wrong, naming the field.') }, ['code', 'message']) }, ['error']);

/** Query or path parameters from an object schema. */
function parameters(where: 'query' | 'path', s: Schema | undefined): Json[] {
  if (!s) return [];
  const j = json(s) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(j.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return { name, in: where, required: where === 'path' || (j.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest };
  });
}

const who = (r: Op['roles']) =>
  r === 'anyone' ? 'No credentials.' : r === 'key' ? 'Credentials of its own (see the configuration section).' : `Roles: ${r.join(', ')}.`;

export function openApiDocument(): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const op of OPERATIONS) {
    const path = op.path.replace(/:(\w+)/g, '{$1}');
    const responses: Record<string, Json> = {
      [String(op.status ?? 200)]: { description: op.ok, content: { [op.type ?? 'application/json']: { schema: op.type === 'text/event-stream' || op.type === 'message/rfc822' ? { type: 'string' } : { type: 'object' } } } },
      '400': { $ref: '#/components/responses/Error' },
    };
    if (op.roles !== 'anyone') Object.assign(responses, { '401': { $ref: '#/components/responses/Error' }, '403': { $ref: '#/components/responses/Error' } });
    if (op.params) responses['404'] = { $ref: '#/components/responses/Error' };
    (paths[path] ??= {})[op.method] = {
      tags: [op.tag],
      summary: op.summary,
      description: who(op.roles),
      operationId: `${op.method}${path.replace(/^\/api\/v1/, '').replace(/[{}]/g, '').replace(/[^a-zA-Z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(op.roles === 'anyone' || op.roles === 'key' ? { security: [] } : {}),
      parameters: [...parameters('path', op.params), ...parameters('query', op.query)],
      ...(op.body ? { requestBody: { required: (op.method === 'post' || op.method === 'patch') && op.body !== empty, content: { 'application/json': { schema: json(op.body) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Postern API', version: 'v1', description: 'The monitoring center\'s API. Errors are { "error": { "code", "message" } }; lists page with limit and an opaque cursor (next_cursor).' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { session: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'web.api_token (admin) or an account\'s token (postern user token).' },
        session: { type: 'apiKey', in: 'cookie', name: 'postern_session', description: 'A sign-in session (POST /api/v1/session); changes also need the x-csrf-token header.' },
      },
      schemas: { Error: ERROR },
      responses: { Error: { description: 'An error.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } },
    },
    paths,
  };
}

/** "GET /api/v1/messages/:id" for every documented operation. */
export const documentedRoutes = (): string[] => OPERATIONS.map((o) => `${o.method.toUpperCase()} ${o.path}`);

export const openApiRoute: FastifyPluginAsync<WebDeps> = async (app) => {
  // Built once: it describes the code, not the configuration.
  const doc = JSON.stringify(openApiDocument());
  app.get(OPENAPI_PATH, async (_req, reply) => reply.type('application/json; charset=utf-8').send(doc));
};
