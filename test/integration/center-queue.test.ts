// The center's queue API over real HTTP to a running Postern whose downstream is down: the waiting recipients are
// listed oldest first with their last error, filtered and paged; an auditor reads but may not retry, nobody without
// credentials does either; once the downstream is back, a retry delivers that one message at the relay's next
// poll (the retry schedule alone would wait an hour), and a flush the rest, each recorded as an event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { createAccount, createToken } from '../../src/center/auth/accounts.ts';

const API_TOKEN = 'center-queue-api-token-for-tests-0123456789';
let p: TestPostern;
let port: number;
let sink: Sink | undefined;
let auditor: string;
const ids: string[] = [];

/** A response whose JSON body the assertions read freely. */
type Res = { status: number; body: any };
async function call(method: string, path: string, token: string | null = API_TOKEN, json?: unknown): Promise<Res> {
  const headers = new Headers();
  if (token) headers.set('authorization', `Bearer ${token}`);
  if (json !== undefined) headers.set('content-type', 'application/json');
  const r = await fetch(`${p.webUrl}${path}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}
const list = async (query = '') => {
  const r = await call('GET', `/api/v1/queue${query}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
};
const status = async (id: string) => (await p.app.store.db.selectFrom('recipients').select('status').where('msg_id', '=', id).executeTakeFirstOrThrow()).status;

beforeAll(async () => {
  // A port nothing listens on: the downstream is down until the test starts a sink there.
  const first = await startSink();
  port = first.port;
  await first.close();
  process.env.POSTERN_TEST_QUEUE_TOKEN = API_TOKEN;
  p = await startTestPostern(
    `[gateway]\ndomains = ["example.com", "example.net"]\n[relay]\nretry_schedule_s = [3600]\n` +
      `[relay.downstream]\nhost = "127.0.0.1"\nport = ${port}\ntls = "none"\n[web]\napi_token = { env = "POSTERN_TEST_QUEUE_TOKEN" }\n`,
  );
  await createAccount(p.app.store.db, { name: 'audrey', role: 'auditor', password: 'audrey password 2' });
  auditor = (await createToken(p.app.store.db, 'audrey')).token;
  const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
  for (const [from, to, subject] of [
    ['alice@example.org', 'bob@example.com', 'first'],
    ['carol@example.net', 'dave@example.com', 'second'],
    ['alice@example.org', 'erin@example.net', 'third'],
  ]) {
    const info = await c.sendMail({ from, to, subject, text: 'x', messageId: `<queue-${subject}@example.org>` });
    ids.push(/queued as (\w+)/.exec(info.response)![1]);
  }
  await until(async () => {
    const rows = await p.app.store.db.selectFrom('recipients').select('status').where('msg_id', 'in', ids).execute();
    return rows.length === 3 && rows.every((r) => r.status === 'deferred');
  }, 10_000, 'every recipient deferred');
}, 30_000);
afterAll(async () => {
  // Postern first, so no pooled relay connection holds the sink open.
  await p?.close();
  await sink?.close();
});

describe('the queue API', () => {
  it('needs credentials, and the role admin to act', async () => {
    for (const [method, path] of [['GET', '/api/v1/queue'], ['POST', `/api/v1/queue/${ids[0]}/retry`], ['POST', '/api/v1/queue/flush']]) {
      const r = await call(method, path, null);
      expect(r, `${method} ${path}`).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', message: expect.any(String) } } });
    }
    expect((await call('GET', '/api/v1/queue', auditor)).status).toBe(200);
    for (const path of [`/api/v1/queue/${ids[0]}/retry`, '/api/v1/queue/flush']) {
      expect(await call('POST', path, auditor)).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    }
    // Refused before anything changed.
    expect((await list()).summary.recipients).toBe(3);
  });

  it('lists the waiting recipients oldest first with their last error, filters and pages them', async () => {
    const all = await list();
    expect(all.items.map((i: { queue_id: string }) => i.queue_id)).toEqual(ids);
    expect(all.next_cursor).toBeNull();
    expect(all.items[0]).toMatchObject({
      queue_id: ids[0],
      message_id: '<queue-first@example.org>',
      mail_from: 'alice@example.org',
      rcpt: 'bob@example.com',
      deliver_to: 'bob@example.com',
      subject: 'first',
      route: 'downstream',
      status: 'deferred',
      attempts: 1,
      last_error: expect.stringMatching(/ECONNREFUSED/),
    });
    expect(all.items[0].next_attempt_at).toBeGreaterThan(Date.now() + 3_000_000);
    expect(all.items[0].age_ms).toBeGreaterThanOrEqual(0);
    expect(all.items[0].received_at).toBeLessThanOrEqual(Date.now());
    expect(all.summary).toEqual({ recipients: 3, messages: 3, with_errors: 3, oldest_received_at: all.items[0].received_at });

    const rcpts = async (q: string) => (await list(q)).items.map((i: { rcpt: string }) => i.rcpt);
    expect(await rcpts('?rcpt=BOB@example.com')).toEqual(['bob@example.com']);
    expect(await rcpts('?domain=example.net')).toEqual(['erin@example.net']);
    expect(await rcpts('?domain=EXAMPLE.COM')).toEqual(['bob@example.com', 'dave@example.com']);
    expect(await rcpts('?sender=@example.org')).toEqual(['bob@example.com', 'erin@example.net']);
    expect(await rcpts('?sender=Carol@example.net&domain=example.com')).toEqual(['dave@example.com']);
    expect(await rcpts('?has_error=true')).toHaveLength(3);
    expect(await rcpts('?has_error=false')).toEqual([]);
    expect(await rcpts('?domain=example.org')).toEqual([]);
    // The summary is the whole queue's, whatever the filters.
    expect((await list('?domain=example.org')).summary.recipients).toBe(3);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { queue_id: string }[]; next_cursor: string | null } = await list(`?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items).toHaveLength(1);
      seen.push(page.items[0].queue_id);
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(ids);

    for (const [q, field] of [['limit=0', 'limit'], ['cursor=nonsense', 'cursor'], ['has_error=maybe', 'has_error'], ['domain=a b', 'domain'], ['colour=red', 'colour']]) {
      const r = await call('GET', `/api/v1/queue?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe('bad_request');
      expect(r.body.error.message).toContain(field);
    }
  });

  it('answers 404 for an unknown queue id and 400 for a body it does not take', async () => {
    expect(await call('POST', '/api/v1/queue/01NOSUCHMESSAGE00000/retry')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await call('POST', `/api/v1/queue/${ids[0]}/retry`, API_TOKEN, { now: true })).toMatchObject({ status: 400, body: { error: { code: 'bad_request', message: expect.stringContaining('now') } } });
    expect(await call('POST', '/api/v1/queue/flush', API_TOKEN, [])).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    expect(await status(ids[0])).toBe('deferred');
  });

  it('retries one message once the downstream is back, then flushes the rest', { timeout: 30_000 }, async () => {
    sink = await startSink({ port });
    const s = sink;
    expect(await call('POST', `/api/v1/queue/${ids[0]}/retry`, API_TOKEN, {})).toEqual({ status: 200, body: { queue_id: ids[0], recipients: 1 } });
    // The relay polls every 200 ms here; its own schedule would wait an hour.
    await until(async () => (await status(ids[0])) === 'delivered', 10_000, 'the retried message delivered');
    expect(s.messages.map((m) => m.to)).toEqual([['bob@example.com']]);
    expect(await status(ids[1])).toBe('deferred');
    expect(await call('POST', `/api/v1/queue/${ids[0]}/retry`)).toMatchObject({ status: 409, body: { error: { code: 'not_waiting' } } });
    expect((await list()).summary).toMatchObject({ recipients: 2, messages: 2 });

    expect(await call('POST', '/api/v1/queue/flush')).toEqual({ status: 200, body: { recipients: 2 } });
    await until(async () => (await status(ids[1])) === 'delivered' && (await status(ids[2])) === 'delivered', 10_000, 'the flushed messages delivered');
    expect(s.messages.map((m) => m.to[0]).sort()).toEqual(['bob@example.com', 'dave@example.com', 'erin@example.net']);
    expect(await list()).toEqual({ items: [], next_cursor: null, limit: 50, summary: { recipients: 0, messages: 0, with_errors: 0, oldest_received_at: null } });
    expect(await call('POST', '/api/v1/queue/flush')).toEqual({ status: 200, body: { recipients: 0 } });

    await p.app.sink.flush();
    const events = await p.app.store.db.selectFrom('events').select(['msg_id', 'data']).where('type', '=', 'queue.retry_requested').orderBy('id').execute();
    expect(events.map((e) => ({ msg_id: e.msg_id, ...JSON.parse(e.data) }))).toEqual([
      { msg_id: ids[0], scope: 'message', recipients: 1, by: 'api' },
      { msg_id: null, scope: 'all', recipients: 2, by: 'api' },
    ]);
  });
});
