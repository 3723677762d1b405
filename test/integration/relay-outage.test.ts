// The downstream is down when mail arrives: the gateway still answers 250 (the spool owns it), the relay defers
// with the connection error, and once the downstream is back on the same port everything arrives, exactly once.
import { afterEach, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startTestPostern, until } from '../harness/postern.ts';
import { startSink, type Sink } from '../harness/sink.ts';
import { missing } from '../harness/services.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe.skipIf(await missing('postgres'))('downstream outage', () => {
  for (const lmtp of [false, true]) {
    it(`${lmtp ? 'LMTP' : 'SMTP'}: mail accepted while the downstream is down is delivered once it is back`, async () => {
      const first = await startSink({ lmtp });
      const port = first.port;
      await first.close();
      // Closed after Postern (cleanup runs backwards), so no pooled relay connection holds the sink open.
      let back: Sink | undefined;
      cleanup.push(async () => back?.close());
      const p = await startTestPostern(
        `[relay]\nretry_schedule_s = [1]\n[relay.downstream]\nhost = "127.0.0.1"\nport = ${port}\nprotocol = "${lmtp ? 'lmtp' : 'smtp'}"\ntls = "none"\n`,
      );
      cleanup.push(() => p.close());
      const c = nodemailer.createTransport({ host: '127.0.0.1', port: p.port, secure: false, ignoreTLS: true });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const info = await c.sendMail({ from: 'alice@example.org', to: ['bob@localhost', 'carol@localhost'], subject: `outage ${i}`, text: 'x', messageId: `<outage-${i}@example.org>` });
        expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
        ids.push(/queued as (\w+)/.exec(info.response)![1]);
      }
      const deferred = await until(async () => {
        const rows = await p.app.store.db.selectFrom('recipients').selectAll().where('msg_id', 'in', ids).execute();
        return rows.length === 10 && rows.every((r) => r.status === 'deferred') ? rows : null;
      }, 10_000, 'every recipient deferred');
      for (const r of deferred) expect(r.last_error).toMatch(/ECONNREFUSED/);
      expect((await p.app.spool.listIds()).sort()).toEqual([...ids].sort());

      back = await startSink({ lmtp, port });
      const sink = back;
      await until(async () => {
        const rows = await p.app.store.db.selectFrom('recipients').select('status').where('msg_id', 'in', ids).execute();
        return rows.every((r) => r.status === 'delivered');
      }, 15_000, 'delivery after the downstream came back');
      const subjects = sink.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw.toString())?.[1]?.trim()).sort();
      expect(subjects).toEqual(['outage 0', 'outage 1', 'outage 2', 'outage 3', 'outage 4']);
      for (const m of sink.messages) expect(m.to.sort()).toEqual(['bob@localhost', 'carol@localhost']);
      await until(async () => (await p.app.spool.listIds()).length === 0, 5_000, 'spool emptied');
    });
  }
});
