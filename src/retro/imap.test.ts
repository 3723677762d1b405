// Pull-back against a real Dovecot: copies delivered over LMTP as a relay delivers them, found by Message-ID through
// a master-user login, moved or deleted, checked afterwards by the user's own login; hostile ids refused before any
// connection; failures named without the password.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { startDovecot, type Dovecot } from '../../test/harness/dovecot.ts';
import { until } from '../../test/harness/postern.ts';
import { missing } from '../../test/harness/services.ts';
import { configSchema } from '../config/schema.ts';
import { pullBack, pullBackMany, type PullbackConfig } from './imap.ts';

const why = await missing('dovecot', 'dovecot-lmtp');

const ALICE = 'alice@localhost';
const BOB = 'bob@localhost';
const PW = 'Correct-Horse-7';
const MASTER_PW = 'Master-Key-42';

function message(id: string, subject: string): string {
  return `From: carol@example.org\r\nTo: ${ALICE}\r\nSubject: ${subject}\r\nMessage-ID: ${id}\r\n\r\n${subject}: the body.\r\n`;
}

/** A server that counts connections and never says a word. */
async function silentServer(): Promise<{ port: number; connections: () => number; close(): void }> {
  let n = 0;
  const socks: net.Socket[] = [];
  const server = net.createServer((s) => {
    n++;
    socks.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => n,
    close: () => {
      for (const s of socks) s.destroy();
      server.close();
    },
  };
}

describe.skipIf(why)('pull-back over IMAP from Dovecot', () => {
  let dv: Dovecot;
  beforeAll(async () => {
    dv = await startDovecot({ users: { alice: PW, bob: PW }, authFailureDelayS: 0, noPenalty: true, lmtp: true, master: { user: 'admin', password: MASTER_PW } });
  });
  afterAll(async () => {
    await dv?.stop();
  });

  const conf = (o: Record<string, unknown> = {}): PullbackConfig =>
    configSchema.parse({
      outbreak: { pullback: { host: '127.0.0.1', port: dv.imapPort, tls: 'none', master_user: 'admin', master_password: MASTER_PW, timeout_ms: 5_000, ...o } },
    }).outbreak.pullback;

  /** Delivers over LMTP, as the relay hands a message to the mailbox server. */
  async function deliver(to: string, raw: string): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: dv.lmtpPort, lmtp: true, secure: false, ignoreTLS: true });
    try {
      await t.sendMail({ envelope: { from: 'carol@example.org', to: [to] }, raw });
    } finally {
      t.close();
    }
  }

  /** What `user` sees in each mailbox with a normal login: Message-IDs by folder (null: no such folder). */
  async function mailboxes(user: string, paths: string[]): Promise<Record<string, string[] | null>> {
    const c = new ImapFlow({ host: '127.0.0.1', port: dv.imapPort, secure: false, auth: { user, pass: PW }, logger: false });
    await c.connect();
    const out: Record<string, string[] | null> = {};
    try {
      const exists = new Set((await c.list()).map((m) => m.path));
      for (const p of paths) {
        if (!exists.has(p)) {
          out[p] = null;
          continue;
        }
        const lock = await c.getMailboxLock(p);
        try {
          const ids: string[] = [];
          if (c.mailbox && c.mailbox.exists) for await (const m of c.fetch('1:*', { envelope: true })) ids.push(m.envelope?.messageId ?? '');
          out[p] = ids;
        } finally {
          lock.release();
        }
      }
    } finally {
      await c.logout();
    }
    return out;
  }

  it('moves one of two delivered copies to Quarantine with the master login, keeping its bytes', async () => {
    const one = message('<one.7f3a@example.org>', 'invoice overdue');
    const two = message('<two.91bc@example.org>', 'team lunch');
    await deliver(ALICE, one);
    await deliver(ALICE, two);

    const r = await pullBack(conf(), ALICE, 'one.7f3a@example.org');
    expect(r.outcome).toBe('moved');
    expect(r.found).toEqual([{ mailbox: 'INBOX', uid: 1 }]);
    // Dovecot puts its trace headers on top; what the relay delivered follows byte for byte.
    expect(r.raw?.toString()).toMatch(/^Return-Path: <carol@example.org>\r\n/);
    expect(r.raw?.toString().endsWith(one)).toBe(true);

    // Alice's own login (her password, not the master's) sees the result.
    expect(await mailboxes(ALICE, ['INBOX', 'Quarantine'])).toEqual({ INBOX: ['<two.91bc@example.org>'], Quarantine: ['<one.7f3a@example.org>'] });
  });

  it('pulls back several ids in one login; an id absent, a different case or a substring is not found', async () => {
    await deliver(ALICE, message('<three@example.org>', 'three'));
    await deliver(ALICE, message('<Four@example.org>', 'four'));
    const logins = () => dv.log().split('\n').filter((l) => /imap-login: Info: Login: user=<alice@localhost>,/.test(l)).length;
    const before = logins();

    const ids = ['<three@example.org>', 'four@example.org', '<Four@example.org>', 'our@example.org', '<nowhere@example.org>', '<tést@example.org>'];
    const r = await pullBackMany(conf({ mailboxes: ['INBOX', 'Junk'] }), ALICE, ids);
    expect([...r.keys()]).toEqual(ids);
    expect(Object.fromEntries([...r].map(([id, x]) => [id, x.outcome]))).toEqual({
      '<three@example.org>': 'moved',
      'four@example.org': 'not_found',
      '<Four@example.org>': 'moved',
      'our@example.org': 'not_found',
      '<nowhere@example.org>': 'not_found',
      '<tést@example.org>': 'not_found',
    });
    expect(r.get('<nowhere@example.org>')).toEqual({ found: [], raw: null, outcome: 'not_found' });
    expect(r.get('<Four@example.org>')!.raw!.toString()).toContain('Subject: four\r\n');
    // Dovecot's log process writes a moment later.
    await until(() => logins() > before, 5_000, 'the login in dovecot.log');
    await new Promise((r) => setTimeout(r, 200));
    expect(logins() - before).toBe(1);
    expect(await mailboxes(ALICE, ['INBOX', 'Quarantine'])).toEqual({
      INBOX: ['<two.91bc@example.org>'],
      Quarantine: ['<one.7f3a@example.org>', '<three@example.org>', '<Four@example.org>'],
    });
  });

  it('finds an id that needs IMAP quoting', async () => {
    const id = '<"odd \\"id\\" {5}"@example.org>';
    await deliver(BOB, message(id, 'quoted'));
    const r = await pullBack(conf(), BOB, id);
    expect(r.outcome).toBe('moved');
    expect((await mailboxes(BOB, ['Quarantine'])).Quarantine).toEqual([id]);
  });

  it('deletes only the copies of that id, creating no folder', async () => {
    await deliver(BOB, message('<del-1@example.org>', 'delete me'));
    await deliver(BOB, message('<keep-1@example.org>', 'keep me'));
    // Bob's own \Deleted mark awaits his expunge, not ours: UID EXPUNGE takes only the pulled-back UIDs.
    await deliver(BOB, message('<marked@example.org>', 'marked'));
    const c = new ImapFlow({ host: '127.0.0.1', port: dv.imapPort, secure: false, auth: { user: BOB, pass: PW }, logger: false });
    await c.connect();
    await c.mailboxOpen('INBOX');
    expect(await c.messageFlagsAdd({ header: { 'message-id': '<marked@example.org>' } }, ['\\Deleted'])).toBe(true);
    await c.logout();

    const r = await pullBack(conf({ action: 'delete', folder: 'Held' }), BOB, '<del-1@example.org>');
    expect(r.outcome).toBe('deleted');
    expect(r.found).toHaveLength(1);
    expect(r.raw?.toString()).toContain('Subject: delete me\r\n');
    expect(await mailboxes(BOB, ['INBOX', 'Held'])).toEqual({ INBOX: ['<keep-1@example.org>', '<marked@example.org>'], Held: null });
    expect((await pullBack(conf({ action: 'delete' }), BOB, '<del-1@example.org>')).outcome).toBe('not_found');
  });

  it('a wrong master password is refused with a message that names the login and not the password', async () => {
    const err = await pullBack(conf({ master_password: 'Wrong-Guess-1' }), ALICE, '<two.91bc@example.org>').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^pull-back: login as alice@localhost\*admin refused by 127\.0\.0\.1:\d+: .*Authentication failed/);
    expect((err as Error).message).not.toContain('Wrong-Guess-1');
    expect((await mailboxes(ALICE, ['INBOX'])).INBOX).toEqual(['<two.91bc@example.org>']);
  });

  it('refuses hostile ids before connecting', async () => {
    const srv = await silentServer();
    try {
      const c = conf({ port: srv.port });
      await expect(pullBack(c, ALICE, '<a@b>\r\nA1 DELETE INBOX')).rejects.toThrow(/Message-ID containing CR, LF or NUL/);
      await expect(pullBack(c, ALICE, '<a\0b@c>')).rejects.toThrow(/CR, LF or NUL/);
      await expect(pullBack(c, ALICE, `<${'x'.repeat(1000)}@c>`)).rejects.toThrow(/longer than 998/);
      await expect(pullBack(c, ALICE, '<>')).rejects.toThrow(/empty Message-ID/);
      await expect(pullBackMany(c, ALICE, ['<fine@example.org>', '<bad@x>\n'])).rejects.toThrow(/CR, LF or NUL/);
      await expect(pullBack(c, 'alice@localhost\r\nA1 LOGOUT', '<fine@example.org>')).rejects.toThrow(/mailbox user/);
      await new Promise((r) => setTimeout(r, 50));
      expect(srv.connections()).toBe(0);
    } finally {
      srv.close();
    }
  });

  it('names the failure: no STARTTLS offered, nothing listening, a server that never answers', async () => {
    await expect(pullBack(conf({ tls: 'starttls' }), ALICE, '<x@example.org>')).rejects.toThrow(/^pull-back: TLS with 127\.0\.0\.1:\d+ failed: .*STARTTLS/);

    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    await expect(pullBack(conf({ port: closed }), ALICE, '<x@example.org>')).rejects.toThrow(/^pull-back: cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/);

    const srv = await silentServer();
    try {
      const started = Date.now();
      await expect(pullBack(conf({ port: srv.port, timeout_ms: 300 }), ALICE, '<x@example.org>')).rejects.toThrow(/timed out after 300 ms \(connect/);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(srv.connections()).toBe(1);
    } finally {
      srv.close();
    }
  });
});
