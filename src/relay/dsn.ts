// Delivery status notifications (RFC 3464): the report sent to the sender when recipients fail for good.
import { randomBytes } from 'node:crypto';
import type { Insertable } from 'kysely';
import type { MessagesTable, RecipientsTable } from '../store/schema.ts';
import type { Route } from './route.ts';

export interface FailedRecipient {
  rcpt: string;
  status: string;
  diagnostic: string;
  action: 'failed' | 'delayed';
}

export function buildDsn(opts: {
  hostname: string;
  to: string;
  queueId: string;
  arrivalDate: Date;
  failed: FailedRecipient[];
  originalHeaders: string;
}): Buffer {
  const boundary = `postern-${randomBytes(8).toString('hex')}`;
  const date = new Date().toUTCString().replace('GMT', '+0000');
  const lines = opts.failed.map((f) => `  <${f.rcpt}>: ${f.diagnostic.replace(/[\r\n]+/g, ' ')}`).join('\r\n');
  const perRcpt = opts.failed
    .map((f) =>
      [
        `Final-Recipient: rfc822; ${f.rcpt}`,
        `Action: ${f.action}`,
        `Status: ${f.status}`,
        `Diagnostic-Code: smtp; ${f.diagnostic.replace(/[\r\n]+/g, ' ').slice(0, 900)}`,
      ].join('\r\n'),
    )
    .join('\r\n\r\n');
  const text = [
    `From: Mail Delivery System <MAILER-DAEMON@${opts.hostname}>`,
    `To: <${opts.to}>`,
    `Subject: Undelivered Mail Returned to Sender`,
    `Date: ${date}`,
    `Message-ID: <${opts.queueId}.dsn.${randomBytes(4).toString('hex')}@${opts.hostname}>`,
    `Auto-Submitted: auto-replied`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `This is the mail system at ${opts.hostname}.`,
    '',
    'Your message could not be delivered to one or more recipients:',
    '',
    lines,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; ${opts.hostname}`,
    `X-Postern-Queue-ID: ${opts.queueId}`,
    `Arrival-Date: ${opts.arrivalDate.toUTCString().replace('GMT', '+0000')}`,
    '',
    perRcpt,
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    opts.originalHeaders.replace(/\r?\n$/, ''),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
  return Buffer.from(text, 'utf8');
}

/** The queue rows of a DSN: a message from <> with one recipient, the original's sender. */
export function dsnQueueEntry(o: { id: string; forMsg: string; sender: string; size: number; route: Route; now: number }): {
  message: Insertable<MessagesTable>;
  recipients: Insertable<RecipientsTable>[];
} {
  const to = o.sender.toLowerCase();
  return {
    message: {
      id: o.id,
      message_id: null,
      received_at: o.now,
      conn_id: null,
      client_ip: null,
      helo: null,
      mail_from: '',
      size: o.size,
      subject: 'Undelivered Mail Returned to Sender',
      score: 0,
      symbols: '[]',
      verdict: JSON.stringify({ dsn_for: o.forMsg }),
      status: 'queued',
    },
    recipients: [
      {
        msg_id: o.id,
        rcpt: to,
        action: 'accept',
        reasons: JSON.stringify([{ source: 'rule', action: 'accept', detail: `delivery status notification for ${o.forMsg}` }]),
        status: 'queued',
        route: o.route,
        deliver_to: to,
        attempts: 0,
        next_attempt_at: o.now,
        last_error: null,
        updated_at: o.now,
      },
    ],
  };
}

/** The enhanced status code (RFC 3463) at the start of an SMTP reply's text, if its class is `cls`. */
export function enhancedOf(response: string, cls: 4 | 5): string | undefined {
  const m = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)/.exec(response);
  return m && Number(m[1]) === cls ? `${m[1]}.${m[2]}.${m[3]}` : undefined;
}
