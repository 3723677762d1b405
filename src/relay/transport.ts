// Sending one copy over SMTP or LMTP with nodemailer, and reading each recipient's outcome from the replies.
import dns from 'node:dns/promises';
import { Readable } from 'node:stream';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../config/schema.ts';

export type Outcome = { kind: 'ok'; response: string } | { kind: 'temp' | 'perm'; code?: number; response: string };

export interface SendResult {
  /** Per recipient address as given. */
  outcomes: Map<string, Outcome>;
  host: string;
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  rejectedErrors?: SmtpError[];
  recipient?: string;
}

/** CR, LF, NUL and the other C0 controls: none can be part of an address, any could end or split a command line. */
const CONTROL = /[\x00-\x1f\x7f]/;

/** nodemailer's error codes for replies about the envelope (MAIL, RCPT, DATA) and the message (after the dot). */
const ABOUT_THE_MESSAGE = new Set(['EENVELOPE', 'EMESSAGE']);

function classify(err: SmtpError): Outcome {
  const code = err.responseCode;
  // Only a 5xx about this message's envelope or content is permanent. A 5xx to the session itself (EHLO,
  // STARTTLS missing or refused under require_starttls, AUTH) says nothing about the message: it stays queued
  // until the downstream is fixed (reliability.md T-05: no plaintext fallback, and no bounce either).
  const aboutMessage = !err.code || ABOUT_THE_MESSAGE.has(err.code);
  const response = ((aboutMessage ? err.response : undefined) ?? err.message).slice(0, 500);
  if (aboutMessage && code && code >= 500 && code < 600) return { kind: 'perm', code, response };
  return { kind: 'temp', code, response };
}

export interface TransportOptions {
  host: string;
  port: number;
  lmtp?: boolean;
  tls: 'none' | 'starttls' | 'require_starttls' | 'implicit' | 'opportunistic';
  tlsVerify?: boolean;
  maxConnections?: number;
  name: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

export function createTransport(o: TransportOptions): Transporter {
  // reliability.md C-13: the EHLO name is written as a command line; a line break in it would add a command.
  if (CONTROL.test(o.name) || !o.name) throw new Error(`relay: EHLO name ${JSON.stringify(o.name)} contains control characters`);
  return nodemailer.createTransport({
    pool: true,
    host: o.host,
    port: o.port,
    lmtp: o.lmtp,
    secure: o.tls === 'implicit',
    ignoreTLS: o.tls === 'none',
    requireTLS: o.tls === 'require_starttls',
    opportunisticTLS: o.tls === 'starttls' || o.tls === 'opportunistic',
    tls: { rejectUnauthorized: Boolean(o.tlsVerify) },
    name: o.name,
    maxConnections: o.maxConnections ?? 5,
    maxMessages: Infinity,
    connectionTimeout: o.connectTimeoutMs,
    greetingTimeout: o.connectTimeoutMs,
    socketTimeout: o.commandTimeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  } as never);
}

interface SendInfo {
  accepted: string[];
  rejectedErrors?: SmtpError[];
  response: string;
}

interface PoolTransport {
  send(mail: unknown, callback: (err: Error | null, info: SendInfo) => void): void;
}

/**
 * Hands finished bytes straight to nodemailer's SMTP pool. `sendMail` would first run them through the message
 * composer (a MIME tree, a Message-ID, plugin stages) only to stream the same bytes back out, which cost more
 * than the SMTP conversation itself on the relay's hot path. The pool keeps its connection reuse, its requeue
 * of messages a dropped connection never sent, and its reset after a refused message; it reads no more of the
 * mail object than is built here.
 */
function sendRaw(t: Transporter, from: string, to: string[], raw: Buffer): Promise<SendInfo> {
  const pool = (t as unknown as { transporter: PoolTransport }).transporter;
  const mail = {
    data: {},
    message: {
      getEnvelope: () => ({ from, to: [...to] }),
      messageId: () => '',
      getHeader: () => '',
      createReadStream: () => Readable.from([raw]),
    },
  };
  return new Promise((resolve, reject) => pool.send(mail, (err, info) => (err ? reject(err) : resolve(info))));
}

/** Sends `raw` to `to`; never throws: every recipient gets an outcome. */
export async function send(t: Transporter, host: string, from: string, to: string[], raw: Buffer): Promise<SendResult> {
  const outcomes = new Map<string, Outcome>();
  // reliability.md C-13: an envelope value with CR or LF must never become a second command line. Nothing is
  // sent; the recipients stay queued (a temporary outcome) for an admin to see, and expire in the end.
  const refused = CONTROL.test(from) ? to : to.filter((r) => CONTROL.test(r));
  for (const r of refused) outcomes.set(r, { kind: 'temp', response: 'envelope contains a line break or control character; not sent' });
  if (refused.length) to = to.filter((r) => !refused.includes(r));
  if (!to.length) return { outcomes, host };
  try {
    const info = await sendRaw(t, from, to, raw);
    for (const r of info.accepted) outcomes.set(r, { kind: 'ok', response: info.response });
    for (const e of info.rejectedErrors ?? []) if (e.recipient) outcomes.set(e.recipient, classify(e));
    for (const r of to) if (!outcomes.has(r)) outcomes.set(r, { kind: 'temp', response: 'no reply for recipient' });
  } catch (e) {
    const err = e as SmtpError;
    if (err.rejectedErrors?.length) {
      for (const re of err.rejectedErrors) if (re.recipient) outcomes.set(re.recipient, classify(re));
    }
    const whole = classify(err);
    for (const r of to) if (!outcomes.has(r)) outcomes.set(r, whole);
  }
  return { outcomes, host };
}

/** Transports to other domains' mail servers: the smarthost when configured, otherwise the domain's MX. */
export class OutboundTransports {
  private cache = new Map<string, Transporter>();

  constructor(private readonly config: Config) {}

  async forDomain(domain: string): Promise<{ t: Transporter; host: string }> {
    const sh = this.config.relay.smarthost;
    let host: string;
    let port = 25;
    if (sh) {
      host = sh.host;
      port = sh.port;
    } else {
      const mx = await dns.resolveMx(domain).catch(() => [] as { exchange: string; priority: number }[]);
      mx.sort((a, b) => a.priority - b.priority);
      host = mx[0]?.exchange || domain;
    }
    const key = `${host}:${port}`;
    let t = this.cache.get(key);
    if (!t) {
      t = createTransport({
        host,
        port,
        tls: 'opportunistic',
        name: this.config.gateway.hostname,
        connectTimeoutMs: this.config.relay.connect_timeout_ms,
        commandTimeoutMs: this.config.relay.command_timeout_ms,
        maxConnections: 2,
      });
      this.cache.set(key, t);
    }
    return { t, host: key };
  }

  close(): void {
    for (const t of this.cache.values()) t.close();
    this.cache.clear();
  }
}
