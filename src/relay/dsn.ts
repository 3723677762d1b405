// Delivery status notifications (RFC 3464): the report sent to the sender when recipients fail for good.
import { randomBytes } from 'node:crypto';

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
