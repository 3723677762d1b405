// Recipient verification against the downstream: an RCPT probe per unknown address, answered from a cache after.
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until } from '../harness/postern.ts';
import { startSink } from '../harness/sink.ts';
import { missing } from '../harness/services.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe.skipIf(await missing('postgres'))('recipient verification', () => {
  it('refuses what the downstream refuses at RCPT, caches answers, and defers when it cannot ask', async () => {
    const probed: string[] = [];
    const sink = await startSink({
      behaviour: {
        rcpt: (a) => {
          probed.push(a);
          return a.startsWith('ghost') ? 550 : a.startsWith('busy') ? 450 : 250;
        },
      },
    });
    cleanup.push(() => sink.close());
    const p = await startTestPostern(
      `[gateway]\ndomains = ["example.com"]\n[gateway.recipient_verify]\nenabled = true\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${sink.port}\ntls = "none"\n`,
    );
    cleanup.push(() => p.close());
    const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
    await expect(c.sendMail({ from: 'a@example.org', to: 'ghost@example.com', text: 'x' })).rejects.toMatchObject({
      response: '550 5.1.1 No such recipient here',
    });
    await expect(c.sendMail({ from: 'a@example.org', to: 'ghost@example.com', text: 'x' })).rejects.toMatchObject({ responseCode: 550 });
    expect(probed.filter((a) => a === 'ghost@example.com')).toHaveLength(1);
    await expect(c.sendMail({ from: 'a@example.org', to: 'busy@example.com', text: 'x' })).rejects.toMatchObject({
      response: '451 4.4.3 Recipient verification unavailable, try again later',
    });
    const ok = await c.sendMail({ from: 'a@example.org', to: 'real@example.com', text: 'x' });
    expect(ok.accepted).toEqual(['real@example.com']);
    await until(() => sink.messages.length === 1);
    await p.app.sink.flush();
    const ev = await p.app.store.db.selectFrom('events').select('data').where('type', '=', 'smtp.rcpt.rejected').execute();
    expect(ev.map((e) => JSON.parse(e.data).reason)).toEqual(['unknown_recipient', 'unknown_recipient', 'verify_unavailable']);
  });
});
