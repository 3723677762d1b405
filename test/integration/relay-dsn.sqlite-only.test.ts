// The relay's outcomes over real sockets (reliability.md D-04…D-09): permanent failures return a DSN (RFC 3464)
// to the sender, never to <>; temporary ones are retried on the schedule; mixed RCPT results are tracked per
// recipient; a dropped connection or a timeout after the dot is a retry, not a bounce; the queue lifetime ends it.
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { startRawSink, type RawSink, type RawSinkOptions } from '../harness/raw-sink.ts';
import { freePort } from '../harness/child.ts';
import { missing } from '../harness/services.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function sink(behaviour: Sink['behaviour'] = {}): Promise<Sink> {
  const s = await startSink({ behaviour });
  cleanup.push(() => s.close());
  return s;
}

async function rawSink(o: RawSinkOptions): Promise<RawSink> {
  const s = await startRawSink(o);
  cleanup.push(() => s.close());
  return s;
}

/** Postern relaying to `downstream`, with DSNs for other domains going to `smarthost`. */
async function postern(downstream: number, smarthost: number, relayExtra = ''): Promise<TestPostern> {
  const p = await startTestPostern(
    `[relay]\n${relayExtra.includes('retry_schedule_s') ? '' : 'retry_schedule_s = [1]\n'}${relayExtra}\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${downstream}\ntls = "none"\n` +
      `[relay.smarthost]\nhost = "127.0.0.1"\nport = ${smarthost}\n`,
  );
  cleanup.push(() => p.close());
  return p;
}

function send(p: TestPostern, from: string, to: string[], subject: string) {
  const raw = `From: <${from || 'mailer@example.org'}>\r\nTo: ${to.map((t) => `<${t}>`).join(', ')}\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@example.org>\r\n\r\nbody of ${subject}\r\n`;
  return nodemailer
    .createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true })
    .sendMail({ envelope: { from, to }, raw });
}

const qidOf = (response: string) => /queued as (\w+)/.exec(response)?.[1] as string;

async function recipients(p: TestPostern, qid: string) {
  const rows = await p.app.store.db.selectFrom('recipients').selectAll().where('msg_id', '=', qid).orderBy('rcpt').execute();
  return Object.fromEntries(rows.map((r) => [r.rcpt, r]));
}

async function dsnRows(p: TestPostern) {
  return p.app.store.db.selectFrom('messages').select(['id', 'verdict', 'mail_from', 'status']).where('verdict', 'like', '%dsn_for%').execute();
}

describe.skipIf(await missing('postgres'))('relay outcomes and DSNs', () => {
  it('5xx at RCPT: bounced, DSN from <> to the sender through the smarthost, with the downstream reply', async () => {
    const down = await sink({ rcpt: (a) => (a.startsWith('nobody') ? 550 : undefined) });
    const smarthost = await sink();
    const p = await postern(down.port, smarthost.port);
    const info = await send(p, 'alice@example.org', ['nobody@localhost'], 'rcpt refused');
    const qid = qidOf(info.response);
    const dsn = await until(() => smarthost.messages[0], 10_000, 'DSN at the smarthost');
    expect(dsn.from).toBe('');
    expect(dsn.to).toEqual(['alice@example.org']);
    const text = dsn.raw.toString('utf8');
    expect(text).toMatch(/^From: Mail Delivery System <MAILER-DAEMON@postern\.localhost>\r\nTo: <alice@example\.org>\r\n/);
    expect(text).toContain('Content-Type: multipart/report; report-type=delivery-status;');
    expect(text).toContain(`X-Postern-Queue-ID: ${qid}`);
    expect(text).toContain('Final-Recipient: rfc822; nobody@localhost\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user');
    expect(text).toMatch(/Content-Type: text\/rfc822-headers\r\n\r\n(?:.*\r\n)*Subject: rcpt refused\r\n/);
    const r = await recipients(p, qid);
    expect(r['nobody@localhost']).toMatchObject({ status: 'bounced', attempts: 1, last_error: expect.stringMatching(/^550 5\.1\.1/) });
    expect(down.messages).toHaveLength(0);
    // One DSN, and it is done once the smarthost took it.
    const dsns = await until(async () => {
      const d = await dsnRows(p);
      return d.length === 1 && d[0].status === 'done' ? d : null;
    });
    expect(JSON.parse(dsns[0].verdict)).toEqual({ dsn_for: qid });
    await p.app.sink.flush();
    const ev = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'relay.bounced').where('msg_id', '=', qid).executeTakeFirstOrThrow();
    expect(JSON.parse(ev.data).dsn).toBe(dsns[0].id);
  });

  it('5xx after DATA: DSN; a sender in our own domains gets it through the downstream', async () => {
    const down = await sink({ data: (m) => (m.from === 'carol@localhost' ? 554 : undefined) });
    const smarthost = await sink();
    const p = await postern(down.port, smarthost.port);
    const info = await send(p, 'carol@localhost', ['bob@localhost'], 'data refused');
    const dsn = await until(() => down.messages.find((m) => m.from === ''), 10_000, 'DSN via the downstream');
    expect(dsn.to).toEqual(['carol@localhost']);
    expect(dsn.raw.toString()).toContain('Final-Recipient: rfc822; bob@localhost\r\nAction: failed\r\nStatus: 5.6.0\r\nDiagnostic-Code: smtp; 554 5.6.0 refused');
    expect((await recipients(p, qidOf(info.response)))['bob@localhost'].status).toBe('bounced');
    expect(smarthost.messages).toHaveLength(0);
  });

  it('never sends a DSN for the null sender', async () => {
    const down = await sink({ rcpt: () => 550 });
    const smarthost = await sink();
    const p = await postern(down.port, smarthost.port);
    const info = await send(p, '', ['nobody@localhost'], 'null sender');
    const qid = qidOf(info.response);
    await until(async () => (await recipients(p, qid))['nobody@localhost'].status === 'bounced', 10_000, 'bounce');
    await until(async () => (await p.app.store.db.selectFrom('messages').select('status').where('id', '=', qid).executeTakeFirst())?.status === 'done');
    await new Promise((r) => setTimeout(r, 500));
    expect(await dsnRows(p)).toEqual([]);
    expect(smarthost.messages).toHaveLength(0);
    expect(down.messages).toHaveLength(0);
  });

  it('mixed RCPT results (D-08): delivered, deferred then delivered, bounced with a DSN, in one queue entry', async () => {
    const codes: Record<string, number> = { 'b@localhost': 450, 'c@localhost': 550 };
    const down = await sink({ rcpt: (a) => codes[a] });
    const smarthost = await sink();
    const p = await postern(down.port, smarthost.port, 'retry_schedule_s = [2]');
    const info = await send(p, 'alice@example.org', ['a@localhost', 'b@localhost', 'c@localhost'], 'mixed');
    const qid = qidOf(info.response);
    const first = await until(async () => {
      const r = await recipients(p, qid);
      return r['b@localhost'].status === 'deferred' ? r : null;
    }, 10_000, 'first attempt');
    expect(first['a@localhost']).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(first['b@localhost']).toMatchObject({ status: 'deferred', attempts: 1, last_error: expect.stringMatching(/^450 4\.2\.1/) });
    expect(first['b@localhost'].next_attempt_at).toBeGreaterThan(first['b@localhost'].updated_at + 1500);
    expect(first['c@localhost']).toMatchObject({ status: 'bounced', attempts: 1 });
    expect(down.messages.map((m) => m.to)).toEqual([['a@localhost']]);
    const dsn = await until(() => smarthost.messages[0], 10_000, 'DSN');
    expect(dsn.raw.toString()).toContain('Final-Recipient: rfc822; c@localhost');
    expect(dsn.raw.toString()).not.toContain('Final-Recipient: rfc822; b@localhost');
    // The message stays in the spool for b until b is through.
    expect((await p.app.store.db.selectFrom('messages').select('status').where('id', '=', qid).executeTakeFirstOrThrow()).status).toBe('queued');
    delete codes['b@localhost'];
    await until(async () => (await recipients(p, qid))['b@localhost'].status === 'delivered', 10_000, 'retry of b');
    expect(down.messages.map((m) => m.to)).toEqual([['a@localhost'], ['b@localhost']]);
    expect((await p.app.store.db.selectFrom('messages').select('status').where('id', '=', qid).executeTakeFirstOrThrow()).status).toBe('done');
    // The file goes right after the commit that marks it done.
    await until(async () => (await p.app.spool.listIds()).length === 0, 5_000, 'spool emptied');
    expect(smarthost.messages).toHaveLength(1);
  });

  it('4xx after the dot (D-04): deferred with next attempt and last error, delivered on the retry', async () => {
    let calls = 0;
    const down = await sink({ data: () => (++calls === 1 ? 451 : undefined) });
    const smarthost = await sink();
    const p = await postern(down.port, smarthost.port);
    const info = await send(p, 'alice@example.org', ['bob@localhost'], 'later');
    const qid = qidOf(info.response);
    const r = await until(async () => {
      const x = (await recipients(p, qid))['bob@localhost'];
      return x.status === 'deferred' ? x : null;
    }, 10_000, 'deferral');
    expect(r.attempts).toBe(1);
    expect(r.last_error).toMatch(/^451 4\.3\.0 later/);
    expect(r.next_attempt_at - r.updated_at).toBe(1000);
    await until(async () => (await recipients(p, qid))['bob@localhost'].status === 'delivered', 10_000, 'retry');
    expect((await recipients(p, qid))['bob@localhost'].attempts).toBe(2);
    expect(down.messages).toHaveLength(1);
    expect(smarthost.messages).toHaveLength(0);
  });

  it('connection dropped after the dot (D-06) and a reply slower than the timeout (D-07) are retried, not bounced', async () => {
    for (const first of [{ drop: true as const }, { delayMs: 1500 }]) {
      let calls = 0;
      const down = await rawSink({ data: () => (++calls === 1 ? first : 250) });
      const smarthost = await sink();
      const p = await postern(down.port, smarthost.port, 'command_timeout_ms = 500');
      const info = await send(p, 'alice@example.org', ['bob@localhost'], 'dropped');
      const qid = qidOf(info.response);
      const r = await until(async () => {
        const x = (await recipients(p, qid))['bob@localhost'];
        return x.status === 'delivered' ? x : null;
      }, 10_000, `delivery after ${JSON.stringify(first)}`);
      expect(r.attempts).toBe(2);
      // The downstream saw the whole message twice: a duplicate is the price of not losing it (RFC 1047).
      expect(down.transactions).toHaveLength(2);
      expect(down.transactions[0].wire.equals(down.transactions[1].wire)).toBe(true);
      expect(down.transactions[1].reply).toMatch(/^250 /);
      expect(smarthost.messages).toHaveLength(0);
      await p.app.sink.flush();
      const ev = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'relay.deferred').where('msg_id', '=', qid).executeTakeFirstOrThrow();
      expect(JSON.parse(ev.data).rcpts[0].response).toMatch('drop' in first ? /closed/i : /timeout|closed/i);
    }
  });

  it('a downstream unreachable past the queue lifetime (D-09): the last attempt is at the deadline, then a DSN with the last error', async () => {
    const closed = await freePort();
    const smarthost = await sink();
    const p = await postern(closed, smarthost.port, 'retry_schedule_s = [3600]\nmax_queue_lifetime_s = 60\nconnect_timeout_ms = 500');
    const info = await send(p, 'alice@example.org', ['bob@localhost'], 'expiring');
    const nul = await send(p, '', ['bob@localhost'], 'expiring null');
    const qid = qidOf(info.response);
    const msg = await p.app.store.db.selectFrom('messages').select('received_at').where('id', '=', qid).executeTakeFirstOrThrow();
    const r = await until(async () => {
      const x = (await recipients(p, qid))['bob@localhost'];
      return x.status === 'deferred' ? x : null;
    }, 10_000, 'first failure');
    expect(r.last_error).toMatch(/ECONNREFUSED/);
    // Not an hour later: the schedule is cut at the end of the queue lifetime.
    expect(r.next_attempt_at).toBe(msg.received_at + 60_000);
    // Let 58 of the 60 seconds pass for both messages.
    for (const id of [qid, qidOf(nul.response)]) {
      await until(async () => (await recipients(p, id))['bob@localhost'].status === 'deferred');
      await p.app.store.db.updateTable('messages').set((eb) => ({ received_at: eb('received_at', '-', 58_000) })).where('id', '=', id).execute();
      await p.app.store.db.updateTable('recipients').set((eb) => ({ next_attempt_at: eb('next_attempt_at', '-', 58_000) })).where('msg_id', '=', id).execute();
    }
    const dsn = await until(() => smarthost.messages[0], 10_000, 'DSN after expiry');
    const text = dsn.raw.toString();
    expect(text).toContain('Final-Recipient: rfc822; bob@localhost\r\nAction: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: smtp; expired after 2 attempts:');
    expect(text).toMatch(/ECONNREFUSED/);
    expect((await recipients(p, qid))['bob@localhost']).toMatchObject({ status: 'expired', attempts: 2 });
    await until(async () => (await recipients(p, qidOf(nul.response)))['bob@localhost'].status === 'expired');
    await new Promise((r) => setTimeout(r, 500));
    expect(smarthost.messages).toHaveLength(1);
    await until(async () => (await p.app.spool.listIds()).length === 0, 5_000, 'spool emptied');
  });
});
