// Recipient verification against the downstream: an RCPT probe (EHLO, MAIL FROM:<>, RCPT TO, RSET), cached.
// Hand-written because nodemailer only sends whole messages; a probe must stop after RCPT.
import net from 'node:net';
import type { Config } from '../config/schema.ts';

export type VerifyResult = 'ok' | 'unknown' | 'tempfail';

export class RecipientVerifier {
  private cache = new Map<string, { r: VerifyResult; until: number }>();

  constructor(private readonly config: Config) {}

  async verify(address: string): Promise<VerifyResult> {
    const hit = this.cache.get(address);
    if (hit && hit.until > Date.now()) return hit.r;
    const r = await this.probe(address);
    if (r !== 'tempfail') {
      if (this.cache.size > 50_000) this.cache.clear();
      this.cache.set(address, { r, until: Date.now() + this.config.gateway.recipient_verify.cache_ttl_s * 1000 });
    }
    return r;
  }

  private probe(address: string): Promise<VerifyResult> {
    const ds = this.config.relay.downstream;
    if (!ds) return Promise.resolve('ok');
    const lmtp = ds.protocol === 'lmtp';
    const steps = [`${lmtp ? 'LHLO' : 'EHLO'} ${this.config.gateway.hostname}`, 'MAIL FROM:<>', `RCPT TO:<${address}>`, 'QUIT'];
    return new Promise((resolve) => {
      let buf = '';
      let step = -1; // -1: waiting for the greeting
      let result: VerifyResult = 'tempfail';
      const sock = net.connect({ host: ds.host, port: ds.port });
      const done = (r: VerifyResult) => {
        result = r;
        sock.end(`QUIT\r\n`);
        sock.destroy();
      };
      sock.setTimeout(this.config.gateway.recipient_verify.timeout_ms, () => done('tempfail'));
      sock.on('error', () => done('tempfail'));
      sock.on('close', () => resolve(result));
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        let m: RegExpExecArray | null;
        // A reply ends with a line "NNN " (not "NNN-").
        while ((m = /^(\d{3}) [^\n]*\n/m.exec(buf))) {
          const code = Number(m[1]);
          buf = buf.slice((m.index ?? 0) + m[0].length);
          if (step === 2) return done(code >= 200 && code < 300 ? 'ok' : code >= 500 ? 'unknown' : 'tempfail');
          if (code >= 400) return done('tempfail');
          step++;
          sock.write(`${steps[step]}\r\n`);
        }
      });
    });
  }
}
