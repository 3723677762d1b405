// Which outside services a test file needs, whether they are here, and a loud skip (or, under CI, a failure) when not.
import net from 'node:net';
import fs from 'node:fs';
import { TEST_STORE } from './postern.ts';

/** Set by .ci/run: a missing service fails the run instead of skipping. */
export const STRICT = process.env.POSTERN_STRICT_SERVICES === '1';

function tcpOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const p = `${dir}/${name}`;
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

/** Dovecot's LMTP service (Debian's dovecot-lmtpd; other builds put it under libexec). */
export function lmtpBinary(): string | undefined {
  return ['/usr/lib/dovecot/lmtp', '/usr/libexec/dovecot/lmtp'].find((p) => fs.existsSync(p));
}

/** Dovecot's submission service (Debian's dovecot-submissiond). */
export function submissionBinary(): string | undefined {
  return ['/usr/lib/dovecot/submission', '/usr/libexec/dovecot/submission'].find((p) => fs.existsSync(p));
}

/** Debian's Chromium, which the browser tests drive through playwright-core (never a downloaded browser). */
export const CHROMIUM = '/usr/bin/chromium';

const checks: Record<string, () => Promise<string | undefined>> = {
  postgres: async () => (TEST_STORE !== 'postgres' || (await tcpOpen(5432)) ? undefined : 'PostgreSQL is not listening on 127.0.0.1:5432'),
  redis: async () => ((await tcpOpen(6379)) ? undefined : 'Redis is not listening on 127.0.0.1:6379'),
  'smtp-source': async () => (findBinary('smtp-source') ? undefined : "Postfix's smtp-source is not installed (apt-get install postfix)"),
  'smtp-sink': async () => (findBinary('smtp-sink') ? undefined : "Postfix's smtp-sink is not installed (apt-get install postfix)"),
  dovecot: async () => (findBinary('dovecot') && findBinary('doveadm') ? undefined : 'Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)'),
  'dovecot-lmtp': async () => (lmtpBinary() ? undefined : "Dovecot's LMTP service is not installed (apt-get install dovecot-lmtpd)"),
  chromium: async () => (fs.existsSync(CHROMIUM) ? undefined : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`),
  'dovecot-submission': async () => (submissionBinary() ? undefined : "Dovecot's submission service is not installed (apt-get install dovecot-submissiond)"),
};

/**
 * Returns the reason a service is missing, or undefined when everything is here. Under STRICT a missing
 * service throws, so the file fails instead of skipping. Use as `describe.skipIf(await missing('x'))`.
 */
export async function missing(...names: string[]): Promise<string | undefined> {
  for (const n of names) {
    const why = await checks[n]();
    if (why) {
      if (STRICT) throw new Error(`required service missing under POSTERN_STRICT_SERVICES: ${why}`);
      console.warn(`SKIPPED: ${why}`);
      return why;
    }
  }
  return undefined;
}
