// The audit trail over real sockets in front of a real Dovecot: an audited user's IMAP session (SELECT, FETCH,
// STORE \Deleted, COPY, EXPUNGE, APPEND, LOGOUT) and POP3 session (RETR, DELE, QUIT) become audit.* events in
// order, `postern audit` tells them as a story, as JSON and as CSV, long sets are cut short, and a user who is
// not audited leaves no audit event at all.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshPgSchema, startTestPostern, tempDir, TEST_STORE, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { closedAfterEach, dovecotForSuite, storedEvents } from '../harness/proxy-suite.ts';
import { RawImap } from '../harness/imap-client.ts';
import { RawPop3 } from '../harness/pop3-client.ts';
import { inProcess } from '../harness/cli.ts';

const why = await missing('dovecot');

const ALICE = 'alice@localhost';
const ALICE_PW = 'Correct-Horse-7';
const BOB = 'bob@localhost';
const BOB_PW = 'Bob-Secret-9';
const message = (n: number) => `From: carol@example.org\r\nTo: alice@localhost\r\nSubject: figures ${n}\r\nMessage-ID: <fig-${n}@example.org>\r\n\r\nFigures ${n}.\r\n`;
const APPENDED = message(9);

const open = closedAfterEach();

interface Running {
  p: TestPostern;
  /** The config file the CLI reads: the same store as the running Postern. */
  file: string;
  imap: number;
  pop3: number;
}

describe.skipIf(why)('audit trail of mailbox users', () => {
  const dovecot = dovecotForSuite({ alice: ALICE_PW, bob: BOB_PW }, {
    setup: async (dv) => {
      for (const [user, pw] of [[ALICE, ALICE_PW], [BOB, BOB_PW]]) {
        const { c } = await RawImap.open(dv.imapPort);
        expect(await c.cmd('s1', `LOGIN ${user} ${pw}`)).toMatch(/s1 OK/);
        expect(await c.cmd('s2', 'CREATE Archive')).toMatch(/s2 OK/);
        for (const n of [1, 2, 3]) {
          c.write(`s3${n} APPEND INBOX {${message(n).length}+}\r\n${message(n)}\r\n`);
          expect(await c.tagged(`s3${n}`)).toMatch(/OK/);
        }
        c.close();
      }
    },
  });

  async function postern(users: string[]): Promise<Running> {
    const dir = tempDir();
    const pgs = TEST_STORE === 'postgres' ? await freshPgSchema() : undefined;
    const store = pgs ? `\n[store]\nurl = ${JSON.stringify(pgs.url)}\n` : '';
    const dv = dovecot();
    const toml =
      `[monitor.imap]\nenabled = true\nfailure_delay_ms = 0\n[monitor.imap.upstream]\nhost = "127.0.0.1"\nport = ${dv.imapPort}\n` +
      `[monitor.pop3]\nenabled = true\nfailure_delay_ms = 0\n[monitor.pop3.upstream]\nhost = "127.0.0.1"\nport = ${dv.pop3Port}\n` +
      `[monitor.audit]\nusers = ${JSON.stringify(users)}\n`;
    const p = await startTestPostern(`${toml}${store}`, { dir, store: 'sqlite' });
    open.push({ close: async () => (await p.close(), await pgs?.drop()) });
    const file = path.join(dir, 'postern.toml');
    fs.writeFileSync(file, `data_dir = ${JSON.stringify(dir)}\n${toml}${store}`);
    return { p, file, imap: p.app.monitor.imap!.port, pop3: p.app.monitor.pop3!.port };
  }

  async function imap(r: Running, user: string, pw: string, localAddress: string): Promise<RawImap> {
    const { c } = await RawImap.open(r.imap, { localAddress });
    open.push(c);
    expect(await c.cmd('a1', `LOGIN ${user} ${pw}`)).toMatch(/a1 OK/);
    return c;
  }

  /** Waits for the end of `n` audited sessions; the events are in the store from then on. */
  const sessionsEnded = (r: Running, n: number) =>
    until(async () => (await storedEvents(r.p, 'audit.session')).filter((e) => e.data.phase === 'end').length >= n, 10_000, `${n} audited sessions ended`);

  it('records every IMAP and POP3 action of an audited user, and postern audit tells it in text, JSON and CSV', async () => {
    const r = await postern([ALICE]);
    const c = await imap(r, ALICE, ALICE_PW, '127.0.0.7');
    expect(await c.cmd('a2', 'SELECT INBOX')).toMatch(/a2 OK/);
    expect(await c.cmd('a3', 'FETCH 1:2 (FLAGS BODY.PEEK[HEADER])')).toMatch(/a3 OK/);
    const longSet = Array.from({ length: 400 }, (_, i) => i + 1).join(',');
    expect(await c.cmd('a4', `UID FETCH ${longSet} (UID)`)).toMatch(/a4 OK/);
    expect(await c.cmd('a5', 'STORE 1 +FLAGS (\\Deleted)')).toMatch(/a5 OK/);
    expect(await c.cmd('a6', 'COPY 2 Archive')).toMatch(/a6 OK/);
    expect(await c.cmd('a7', 'EXPUNGE')).toMatch(/a7 OK/);
    c.write(`a8 APPEND INBOX (\\Seen) {${APPENDED.length}+}\r\n${APPENDED}\r\n`);
    expect(await c.tagged('a8')).toMatch(/a8 OK/);
    expect(await c.cmd('a9', 'NOOP')).toMatch(/a9 OK/);
    expect(await c.cmd('a10', 'LOGOUT')).toMatch(/a10 OK/);
    await sessionsEnded(r, 1);

    const { c: p3 } = await RawPop3.open(r.pop3, { localAddress: '127.0.0.8' });
    open.push(p3);
    expect(await p3.cmd(`USER ${ALICE}`)).toMatch(/^\+OK/);
    expect(await p3.cmd(`PASS ${ALICE_PW}`)).toMatch(/^\+OK/);
    p3.write('RETR 1\r\n');
    expect(await p3.multi()).toMatch(/^\+OK[\s\S]*Subject: figures 2/);
    expect(await p3.cmd('DELE 1')).toMatch(/^\+OK/);
    expect(await p3.cmd('STAT')).toMatch(/^\+OK/);
    expect(await p3.cmd('QUIT')).toMatch(/^\+OK/);
    await sessionsEnded(r, 2);

    // JSON: every action, in order, with what it concerned.
    const json = await inProcess(['audit', ALICE, '--config', r.file, '--json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const trail = JSON.parse(json.stdout) as { user: string; events: { type: string; session: string; ip: string; text: string; data: Record<string, any> }[] };
    expect(trail.user).toBe(ALICE);
    const steps = trail.events.map((e) => (e.type === 'audit.session' ? `${e.data.protocol} ${e.data.phase}` : e.data.command));
    expect(steps).toEqual([
      'imap login', 'SELECT', 'FETCH', 'UID FETCH', 'STORE', 'COPY', 'EXPUNGE', 'APPEND', 'LOGOUT', 'imap end',
      'pop3 login', 'RETR', 'DELE', 'QUIT', 'pop3 end',
    ]);
    const ev = (command: string) => trail.events.find((e) => e.data.command === command)!.data;
    expect(trail.events[0]).toMatchObject({ ip: '127.0.0.7', data: { user: ALICE, protocol: 'imap', ip: '127.0.0.7', tls: null } });
    expect(ev('FETCH')).toMatchObject({ mailbox: 'INBOX', set: '1:2', items: '(FLAGS BODY.PEEK[HEADER])' });
    expect(ev('UID FETCH').set.length).toBeLessThanOrEqual(512);
    expect(ev('UID FETCH').set).toMatch(/^1,2,3,.*…$/);
    expect(ev('STORE')).toMatchObject({ mailbox: 'INBOX', set: '1', items: '+FLAGS', flags: ['\\Deleted'] });
    expect(ev('COPY')).toMatchObject({ mailbox: 'INBOX', set: '2', target: 'Archive' });
    expect(ev('EXPUNGE')).toMatchObject({ mailbox: 'INBOX' });
    expect(ev('APPEND')).toMatchObject({ mailbox: 'INBOX', size: APPENDED.length, flags: ['\\Seen'] });
    expect(ev('RETR')).toMatchObject({ protocol: 'pop3', msg: 1 });
    expect(ev('DELE')).toMatchObject({ protocol: 'pop3', msg: 1 });
    const ends = trail.events.filter((e) => e.data.phase === 'end');
    for (const e of ends) expect(e.data).toMatchObject({ reason: 'logout', bytes_in: expect.any(Number), bytes_out: expect.any(Number) });
    expect(ends[0].data.commands).toBe(9);
    expect(ends[1].data.bytes_out).toBeGreaterThan(message(2).length);
    const imapSession = trail.events[0].session;
    expect(trail.events.slice(0, 10).every((e) => e.session === imapSession)).toBe(true);
    expect(trail.events[10].ip).toBe('127.0.0.8');

    // Text: each session as a story, in order.
    const text = await inProcess(['audit', ALICE, '--config', r.file]);
    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    const want = [
      `session ${imapSession}  imap  ${ALICE}`,
      'imap login from 127.0.0.7 (no TLS)',
      'SELECT INBOX',
      'FETCH 1:2 (FLAGS BODY.PEEK[HEADER]) in INBOX',
      'UID FETCH 1,2,3,',
      'STORE 1 +FLAGS (\\Deleted) in INBOX',
      'COPY 2 in INBOX to Archive',
      'EXPUNGE in INBOX',
      `APPEND to INBOX, ${APPENDED.length} octets (\\Seen)`,
      'LOGOUT',
      'logout after ',
      'pop3 login from 127.0.0.8 (no TLS)',
      'RETR 1',
      'DELE 1',
      'QUIT',
      'logout after ',
    ];
    let at = -1;
    for (const w of want) {
      const i = lines.findIndex((l, j) => j > at && l.includes(w));
      expect(i, `"${w}" after line ${at} of:\n${text.stdout}`).toBeGreaterThan(at);
      at = i;
    }
    expect(text.stdout).toMatch(/^ {2}\d\d:\d\d:\d\d {2}SELECT INBOX$/m);

    // CSV: a header row, then one row per event; a field starting with + is kept from being read as a formula.
    const csv = await inProcess(['audit', ALICE, '--config', r.file, '--csv']);
    expect(csv.code).toBe(0);
    const rows = csv.stdout.trimEnd().split('\n');
    expect(rows[0]).toBe('time,session,protocol,user,ip,event,command,mailbox,set,items,flags,target,size,msg,text');
    expect(rows).toHaveLength(trail.events.length + 1);
    expect(rows.find((l) => l.includes(',STORE,'))).toContain(`,${ALICE},127.0.0.7,command,STORE,INBOX,1,'+FLAGS,\\Deleted,,,,`);
    expect(rows.find((l) => l.includes(',RETR,'))).toMatch(/,pop3,alice@localhost,127\.0\.0\.8,command,RETR,,,,,,,1,RETR 1$/);
    expect(rows[1]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z,[^,]+,imap,alice@localhost,127\.0\.0\.7,login,/);

    // One session only.
    const one = JSON.parse((await inProcess(['audit', ALICE, '--config', r.file, '--json', '--session', imapSession])).stdout);
    expect(one.events).toHaveLength(10);
    // Nothing from the future.
    const later = await inProcess(['audit', ALICE, '--config', r.file, '--since', new Date(Date.now() + 60_000).toISOString()]);
    expect(later.stdout).toMatch(/^no audit trail for alice@localhost/);
  });

  it('leaves no audit event for a user who is not audited, and says what is wrong with bad options', async () => {
    const r = await postern(['*@example.org', 'alice@localhost']);
    const c = await imap(r, BOB, BOB_PW, '127.0.0.9');
    expect(await c.cmd('a2', 'SELECT INBOX')).toMatch(/a2 OK/);
    expect(await c.cmd('a3', 'FETCH 1 (BODY.PEEK[])')).toMatch(/a3 OK/);
    expect(await c.cmd('a4', 'STORE 1 +FLAGS (\\Deleted)')).toMatch(/a4 OK/);
    expect(await c.cmd('a5', 'LOGOUT')).toMatch(/a5 OK/);
    const { c: p3 } = await RawPop3.open(r.pop3);
    open.push(p3);
    expect(await p3.cmd(`USER ${BOB}`)).toMatch(/^\+OK/);
    expect(await p3.cmd(`PASS ${BOB_PW}`)).toMatch(/^\+OK/);
    expect(await p3.cmd('DELE 2')).toMatch(/^\+OK/);
    expect(await p3.cmd('RSET')).toMatch(/^\+OK/);
    expect(await p3.cmd('QUIT')).toMatch(/^\+OK/);
    await until(async () => (await storedEvents(r.p, 'pop3.close')).length && (await storedEvents(r.p, 'imap.close')).length, 10_000, 'both sessions closed');

    expect((await storedEvents(r.p, 'auth.succeeded')).map((e) => e.data.user)).toEqual([BOB, BOB]);
    expect(await storedEvents(r.p, 'audit.session')).toEqual([]);
    expect(await storedEvents(r.p, 'audit.command')).toEqual([]);
    const none = await inProcess(['audit', BOB, '--config', r.file]);
    expect(none).toMatchObject({ code: 0, stdout: expect.stringMatching(/^no audit trail for bob@localhost since /) });

    const noUser = await inProcess(['audit', '--config', r.file]);
    expect(noUser.code).toBe(64);
    expect(noUser.stderr).toMatch(/audit needs the user/);
    const badSince = await inProcess(['audit', BOB, '--since', 'yesterday', '--config', r.file]);
    expect(badSince.code).toBe(64);
    expect(badSince.stderr).toMatch(/--since "yesterday" is neither a duration/);
    const both = await inProcess(['audit', BOB, '--json', '--csv', '--config', r.file]);
    expect(both.code).toBe(64);
  });
});
