// Attack simulations over real sockets against a running gateway, each attacker and each legitimate sender from its
// own loopback address: a directory harvest from one address or spread over a /24, and a message flood. Legitimate
// mail runs beside the attack the whole time, and the report says when the gateway started refusing the attacker
// and what the legitimate senders lost.
import { randomBytes } from 'node:crypto';
import { SimClient, code } from './sim-client.ts';

export interface SimTarget {
  host: string;
  port: number;
  /** A domain the gateway accepts mail for. */
  domain: string;
  /** Existing recipients, for the legitimate senders. */
  known: string[];
  /** First three octets of the attacker's /24 (e.g. "127.0.0") and of the legitimate senders' (e.g. "127.0.2"). */
  attackerNet: string;
  legitNet: string;
  /** Legitimate senders running beside the attack, and the pause between their messages. */
  legitSenders: number;
  legitPauseMs: number;
  /** Told each notable moment. */
  onStep?: (line: string) => void;
}

export interface LegitTally {
  sent: number;
  accepted: number;
  refused: number;
  deferred: number;
  errors: number;
}

export interface HarvestReport {
  scenario: 'harvest' | 'harvest-distributed';
  /** Recipients answered 5.1.1 "no such recipient": what the attacker learned. */
  unknown_revealed: number;
  /** Recipients refused after the block began. */
  refused_after_block: number;
  /** Addresses the attack used, and how many had started before the block. */
  addresses_used: number;
  /** Milliseconds from the first RCPT to the first refusal by the block; null if none came. */
  blocked_after_ms: number | null;
  blocked_reply: string | null;
  legit: LegitTally;
}

export interface FloodReport {
  scenario: 'flood';
  sent: number;
  accepted: number;
  deferred: number;
  refused: number;
  /** Messages accepted before the first deferral, and when it came. */
  accepted_before_throttle: number;
  throttled_after_ms: number | null;
  /** The first few replies that were neither 2xx nor 4xx ('' when the gateway closed the connection). */
  sample_refusals: string[];
  legit: LegitTally;
}

const rand = () => randomBytes(5).toString('hex');

/** Legitimate mail from legitNet.10, .11, … until stopped. */
function legitTraffic(t: SimTarget): { stop(): Promise<LegitTally> } {
  const tally: LegitTally = { sent: 0, accepted: 0, refused: 0, deferred: 0, errors: 0 };
  let running = true;
  const one = async (i: number) => {
    const ip = `${t.legitNet}.${10 + i}`;
    while (running) {
      try {
        const c = await SimClient.connect(t.host, t.port, ip);
        await c.reply();
        await c.cmd(`EHLO legit${i}.example.net`);
        await c.cmd(`MAIL FROM:<sender${i}@legit${i}.example.net>`);
        const to = t.known[tally.sent % t.known.length];
        tally.sent++;
        const r = await c.cmd(`RCPT TO:<${to}>`);
        const final = r.startsWith('250')
          ? await c.data(`From: sender${i}@legit${i}.example.net\nTo: ${to}\nSubject: weekly report ${tally.sent}\nDate: ${new Date().toUTCString()}\nMessage-ID: <${rand()}@legit${i}.example.net>\n\nHello, the figures for this week are attached below.\n`)
          : r;
        if (final.startsWith('250')) tally.accepted++;
        else if (final.startsWith('4')) tally.deferred++;
        else tally.refused++;
        c.quit();
      } catch {
        tally.errors++;
      }
      await new Promise((r) => setTimeout(r, t.legitPauseMs));
    }
  };
  const all = Array.from({ length: t.legitSenders }, (_, i) => one(i));
  return {
    async stop() {
      running = false;
      await Promise.all(all);
      return tally;
    },
  };
}

/**
 * A harvest: RCPTs to made-up addresses of the domain, from one address (`distributed` false: one session,
 * reconnecting if closed) or from attackerNet.2, .3, … with `perIp` guesses each. Stops `after` attempts past the
 * first block, or at `maxRcpts`.
 */
export async function simulateHarvest(
  t: SimTarget,
  o: { distributed: boolean; perIp?: number; maxRcpts?: number; after?: number; attacker?: string },
): Promise<HarvestReport> {
  const legit = legitTraffic(t);
  const perIp = o.perIp ?? 2;
  const maxRcpts = o.maxRcpts ?? 500;
  const after = o.after ?? 10;
  const report: HarvestReport = {
    scenario: o.distributed ? 'harvest-distributed' : 'harvest',
    unknown_revealed: 0,
    refused_after_block: 0,
    addresses_used: 0,
    blocked_after_ms: null,
    blocked_reply: null,
    legit: { sent: 0, accepted: 0, refused: 0, deferred: 0, errors: 0 },
  };
  let start = 0;
  let attempts = 0;
  let host = 2;
  const done = () => attempts >= maxRcpts || report.refused_after_block >= after;
  try {
    while (!done() && host < 255) {
      const ip = o.distributed ? `${t.attackerNet}.${host++}` : (o.attacker ?? `${t.attackerNet}.66`);
      report.addresses_used = o.distributed ? host - 2 : 1;
      const c = await SimClient.connect(t.host, t.port, ip);
      if (!(await c.reply()).startsWith('220')) {
        c.quit();
        continue;
      }
      await c.cmd(`EHLO mx${host}.harvest.example`);
      await c.cmd(`MAIL FROM:<probe${rand()}@harvest.example>`);
      for (let i = 0; (!o.distributed || i < perIp) && !done(); i++) {
        start ||= Date.now();
        attempts++;
        const r = await c.cmd(`RCPT TO:<${rand()}@${t.domain}>`);
        const k = code(r);
        if (k === '550 5.1.1') report.unknown_revealed++;
        else if (k.startsWith('5') || k.startsWith('4')) {
          if (report.blocked_after_ms === null) {
            report.blocked_after_ms = Date.now() - start;
            report.blocked_reply = r;
            t.onStep?.(`blocked after ${report.unknown_revealed} unknown recipients (${report.blocked_after_ms} ms): ${r}`);
          }
          report.refused_after_block++;
        }
        if (k === 'closed') break;
      }
      c.quit();
    }
  } finally {
    report.legit = await legit.stop();
  }
  return report;
}

/**
 * A flood: up to `messages` messages from one address, one after another, as fast as the gateway answers; with
 * `afterThrottle`, it stops that many messages after the first deferral (a fast client would otherwise be done
 * before a slow analyzer has read its first events).
 */
export async function simulateFlood(t: SimTarget, o: { messages: number; attacker?: string; afterThrottle?: number }): Promise<FloodReport> {
  const legit = legitTraffic(t);
  const r: FloodReport = { scenario: 'flood', sent: 0, accepted: 0, deferred: 0, refused: 0, accepted_before_throttle: 0, throttled_after_ms: null, sample_refusals: [], legit: r0() };
  const ip = o.attacker ?? `${t.attackerNet}.77`;
  const start = Date.now();
  let reconnects = 0;
  try {
    let c = await SimClient.connect(t.host, t.port, ip);
    await c.reply();
    await c.cmd('EHLO bulk.flood.example');
    for (let i = 0; i < o.messages; i++) {
      if (o.afterThrottle !== undefined && r.throttled_after_ms !== null && r.deferred >= o.afterThrottle) break;
      if (c.closed) {
        c = await SimClient.connect(t.host, t.port, ip);
        await c.reply();
        await c.cmd('EHLO bulk.flood.example');
      }
      await c.cmd(`MAIL FROM:<offers@flood.example>`);
      const to = t.known[i % t.known.length];
      const rc = await c.cmd(`RCPT TO:<${to}>`);
      if (rc === '') {
        // The gateway closed the session (its error limit); the next round reconnects and sends this one again.
        if (++reconnects > o.messages) break;
        i--;
        continue;
      }
      r.sent++;
      const final = rc.startsWith('250')
        ? await c.data(`From: offers@flood.example\nTo: ${to}\nSubject: offer ${i}\nDate: ${new Date().toUTCString()}\nMessage-ID: <${rand()}@flood.example>\n\nToday only.\n`)
        : rc;
      if (final.startsWith('250')) {
        r.accepted++;
        if (r.throttled_after_ms === null) r.accepted_before_throttle++;
      } else if (final.startsWith('4')) {
        r.deferred++;
        if (r.throttled_after_ms === null) {
          r.throttled_after_ms = Date.now() - start;
          t.onStep?.(`throttled after ${r.accepted} messages (${r.throttled_after_ms} ms): ${final}`);
        }
        await c.cmd('RSET');
      } else {
        r.refused++;
        if (r.sample_refusals.length < 5) r.sample_refusals.push(final);
        await c.cmd('RSET');
      }
    }
    c.quit();
  } finally {
    r.legit = await legit.stop();
  }
  return r;
}

const r0 = (): LegitTally => ({ sent: 0, accepted: 0, refused: 0, deferred: 0, errors: 0 });

/** Probes from `ip` with one RCPT to a known recipient every second until it is accepted; resolves the wait in ms. */
export async function waitLifted(t: SimTarget, ip: string, timeoutMs: number): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    try {
      const c = await SimClient.connect(t.host, t.port, ip);
      await c.reply();
      await c.cmd('EHLO probe.example');
      await c.cmd('MAIL FROM:<probe@probe.example>');
      const r = await c.cmd(`RCPT TO:<${t.known[0]}>`);
      c.quit();
      if (r.startsWith('250')) return Date.now() - start;
    } catch {
      /* the gateway may be restarting */
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  return null;
}
