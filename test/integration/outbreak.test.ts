// Outbreaks end to end over real sockets: a campaign of variants, each from its own source address, interleaved with
// ordinary mail, through the gateway; the cluster declared, later copies held in line, the copies delivered before
// pulled back (out of the built-in Maildirs; over IMAP from a real Dovecot with a master user), and no ordinary
// message held. The figures are those `postern simulate outbreak` prints, with the targets.
import { ImapFlow } from 'imapflow';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import type { Dovecot } from '../harness/dovecot.ts';
import { BASE, KNOWN, MAILBOX_PASS, dovecotConfig, startOutbreakDovecot } from '../harness/outbreak.ts';
import { missing } from '../harness/services.ts';
import { simulateOutbreak, type OutbreakReport } from '../../src/retro/simulate.ts';
import { renderOutbreakReport } from '../../src/cli/simulate-outbreak.ts';

let pt: TestPostern | undefined;
let dv: Dovecot | undefined;
afterEach(async () => {
  await pt?.close();
  pt = undefined;
  await dv?.stop();
  dv = undefined;
});

function expectTargets(r: OutbreakReport, variants: number): void {
  expect(r.cluster).not.toBeNull();
  expect(r.declared_at).not.toBeNull();
  expect(r.campaign.accepted).toBe(variants);
  expect(r.delivered_before_declaration).toBeLessThanOrEqual(3);
  expect(r.pulled_back).toBe(r.delivered);
  if (r.pullback_ms !== null) expect(r.pullback_ms).toBeLessThanOrEqual(5_000);
  expect(r.ordinary_held).toEqual([]);
  expect(r.ordinary.accepted).toBe(r.ordinary.sent);
  // Every copy is accounted for: held in line or pulled back, none left in a mailbox.
  expect(r.held_in_line + r.pulled_back).toBe(variants);
  expect(r.targets).toEqual({ delivered_before_declaration: true, pullback_within_5s: true, no_ordinary_held: true });
}

describe('outbreak in the built-in mailboxes', () => {
  it('declares the campaign, holds its later copies and pulls the delivered ones out of the Maildirs', async () => {
    pt = await startTestPostern(BASE);
    const r = await simulateOutbreak(
      { host: '127.0.0.1', port: pt.port, domain: 'localhost', known: KNOWN, variants: 12, ordinaryPerVariant: 1, attackerNet: '127.0.7', legitNet: '127.0.3', paceMs: 50, settleMs: 8_000 },
      pt.app.store.db,
    );
    expectTargets(r, 12);
    // Nothing of the campaign is left in any mailbox; every ordinary message is.
    let campaign = 0;
    let ordinary = 0;
    for (const u of KNOWN) {
      for (const f of await pt.app.maildir.list(u)) {
        const text = (await import('node:fs')).readFileSync(f, 'latin1');
        if (/shared ".*" with you/.test(text)) campaign++;
        else if (!/^Auto-Submitted:/im.test(text)) ordinary++;
      }
    }
    expect(campaign).toBe(0);
    expect(ordinary).toBe(r.ordinary.accepted);
    // The admin (and each recipient whose copy was taken back) is told; the notice follows the sweep's last act.
    const p = pt;
    await until(async () => (await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'retro.notified').execute()).length > 0, 5_000, 'the outbreak notice');
  });
});

const why = await missing('dovecot', 'dovecot-lmtp');

describe.skipIf(why)('outbreak delivered to a real Dovecot', () => {
  it('40 variants from 40 sources among ordinary mail: at most 3 copies delivered before the declaration, all pulled back over IMAP within 5 s, no ordinary message held', async () => {
    dv = await startOutbreakDovecot();
    pt = await startTestPostern(dovecotConfig(dv));
    const r = await simulateOutbreak(
      { host: '127.0.0.1', port: pt.port, domain: 'localhost', known: KNOWN, variants: 40, ordinaryPerVariant: 1, attackerNet: '127.0.8', legitNet: '127.0.4', paceMs: 40, settleMs: 10_000 },
      pt.app.store.db,
    );
    console.log(renderOutbreakReport(r));
    expectTargets(r, 40);
    // Seen from the users' own logins: no campaign copy in any INBOX, the pulled-back ones in Quarantine, every
    // ordinary message in place.
    let inInbox = 0;
    let inQuarantine = 0;
    let ordinary = 0;
    for (const u of KNOWN) {
      const c = new ImapFlow({ host: '127.0.0.1', port: dv.imapPort, secure: false, auth: { user: u, pass: MAILBOX_PASS }, logger: false });
      await c.connect();
      for (const box of ['INBOX', 'Quarantine']) {
        const lock = await c.getMailboxLock(box).catch(() => null);
        if (!lock) continue;
        try {
          for await (const m of c.fetch('1:*', { envelope: true })) {
            const campaign = /shared ".*" with you/.test(m.envelope?.subject ?? '');
            if (box === 'INBOX' && campaign) inInbox++;
            else if (box === 'Quarantine' && campaign) inQuarantine++;
            else if (box === 'INBOX' && !/removed from your mailbox/.test(m.envelope?.subject ?? '')) ordinary++;
          }
        } finally {
          lock.release();
        }
      }
      await c.logout();
    }
    expect(inInbox).toBe(0);
    expect(inQuarantine).toBe(r.delivered);
    expect(ordinary).toBe(r.ordinary.accepted);
  }, 60_000);
});
