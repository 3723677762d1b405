// What the audit trail records of IMAP commands framed by the proxy's own parser after login (streaming mode, so a
// literal's bytes are not kept): STORE variants, MOVE and UID forms, RENAME, literals, and the limits on length.
import { describe, expect, it } from 'vitest';
import { ImapParser, type ImapCommand } from '../imap/parser.ts';
import { imapAction } from './imap.ts';
import { AuditTrail } from './trail.ts';
import { SessionFacts } from '../session.ts';
import type { PosternEvent } from '../../core/events.ts';

function frame(text: string): ImapCommand[] {
  const out: ImapCommand[] = [];
  const p = new ImapParser({ maxLine: 65_536, maxLiteral: 1 << 20, maxNonSyncLiteral: 4096, maxDepthPreAuth: 1 }, {
    command: (c) => void out.push(c),
    error: (e) => {
      throw new Error(e.text);
    },
    continueLiteral: () => undefined,
    line: () => undefined,
  });
  p.streaming = true;
  p.feed(Buffer.from(text, 'latin1'));
  return out;
}

function trail(user = 'Alice@Example.org') {
  const events: Omit<PosternEvent, 'ts'>[] = [];
  const facts = new SessionFacts({ remoteAddress: '::ffff:192.0.2.7', remotePort: 1234 } as never);
  facts.user = user;
  const t = AuditTrail.start(['*@example.org'], (type, f) => void events.push({ type, ...f, data: f.data ?? {} }), 'imap', facts);
  return { t, events };
}

describe('imapAction', () => {
  it('reads STORE in every form, MOVE, UID EXPUNGE, RENAME and a literal mailbox, in the selected mailbox', () => {
    const { t } = trail();
    const acts = frame(
      [
        'a EXAMINE "Sent Items"',
        'b UID STORE 4:7 (UNCHANGEDSINCE 12) -FLAGS.SILENT (\\Seen \\Flagged)',
        'c STORE 1 +FLAGS \\Deleted \\Seen',
        'd UID MOVE 9 Trash',
        'e UID EXPUNGE 9',
        'f FETCH 2 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] UID)',
        'g RENAME Old {3+}\r\nNew',
        'h NOOP',
        'i UID SELECT x',
      ].join('\r\n') + '\r\n',
    ).map((c) => imapAction(c, t!));
    expect(acts).toEqual([
      { command: 'EXAMINE', mailbox: 'Sent Items' },
      { command: 'UID STORE', mailbox: 'Sent Items', set: '4:7', items: '-FLAGS.SILENT', flags: ['\\Seen', '\\Flagged'] },
      { command: 'STORE', mailbox: 'Sent Items', set: '1', items: '+FLAGS', flags: ['\\Deleted', '\\Seen'] },
      { command: 'UID MOVE', mailbox: 'Sent Items', set: '9', target: 'Trash' },
      { command: 'UID EXPUNGE', mailbox: 'Sent Items', set: '9' },
      { command: 'FETCH', mailbox: 'Sent Items', set: '2', items: '(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] UID)' },
      { command: 'RENAME', mailbox: 'Old', target: '{3}' },
      null,
      null,
    ]);
  });

  it('cuts long sets and items at 512 characters and keeps at most 32 flags', () => {
    const { t } = trail();
    const set = Array.from({ length: 2000 }, (_, i) => i + 1).join(',');
    const flags = Array.from({ length: 100 }, (_, i) => `$f${i}`).join(' ');
    const items = Array.from({ length: 300 }, (_, i) => `BODY.PEEK[${i}]`).join(' ');
    const [fetch, store] = frame(`a FETCH ${set} (${items})\r\nb STORE ${set} +FLAGS (${flags})\r\n`).map((c) => imapAction(c, t!)!);
    expect(String(fetch.set)).toHaveLength(512);
    expect(String(fetch.set).endsWith('…')).toBe(true);
    expect(String(fetch.items).length).toBeLessThanOrEqual(512);
    expect(store.flags).toHaveLength(32);
  });

  it('audits only the users listed, and tells the session from login to its end', () => {
    const { t, events } = trail();
    expect(t!.user).toBe('alice@example.org');
    expect(events[0]).toMatchObject({ type: 'audit.session', ip: '192.0.2.7', data: { user: 'alice@example.org', protocol: 'imap', phase: 'login', ip: '192.0.2.7', tls: null } });
    t!.command({ command: 'LOGOUT' });
    t!.end('server_closed');
    expect(events[2]).toMatchObject({ type: 'audit.session', data: { phase: 'end', reason: 'logout' } });
    expect(trail('bob@example.com').t).toBeNull();
    expect(trail('alice').t).toBeNull();
  });
});
