// Writes the header fixtures of cases/ whose exact bytes matter (run: node --import tsx
// src/analysis/checks/headers/make-cases.ts): the From ambiguities of reliability 2.1 (espoofer A8-A19), display-name
// tricks (I-02, I-03, E-02), and Received chains. The output is committed; hand-written cases sit next to it.
import fs from 'node:fs';
import path from 'node:path';

const dir = path.join(import.meta.dirname, 'cases');
const tail = 'To: <victim@example.com>\r\nSubject: t\r\nDate: Fri, 14 Mar 2025 09:58:00 +0100\r\nMessage-ID: <t.1@attack.example>\r\n\r\nbody\r\n';
const files: Record<string, string | Buffer> = {};

// Reliability 2.1: each From header block followed by the same To, Subject and body.
const spoof: Record<string, string> = {
  'a08-two-from-fields': 'From: <first@attack.example>\r\nFrom: <admin@legitimate.example>\r\n',
  'a09-leading-space-from': ' From: <first@attack.example>\r\nFrom: <admin@legitimate.example>\r\n',
  'a10-space-before-colon': 'From: <first@attack.example>\r\nFrom : <admin@legitimate.example>\r\n',
  'a11-folded-field-name': 'From\r\n : <first@attack.example>\r\nFrom: <admin@legitimate.example>\r\n',
  'a14-two-mailboxes': 'From: <first@attack.example>, <admin@legitimate.example>\r\n',
  'a15-encoded-word-address': 'From: =?utf-8?B?PGFkbWluQGxlZ2l0aW1hdGUuZXhhbXBsZT4=?=,<second@attack.example>\r\n',
  'a16-source-route': 'From: <@attack.example,@any.example:admin@legitimate.example>\r\n',
  'a17-escaped-comma': 'From: <admin@legitimate.example>\\,<second@attack.example>\r\n',
  'a18-bare-then-angle': 'From: admin@legitimate.example,<second@attack.example>\r\n',
  'a19-address-after-angle': 'From: <any@attack.example>admin@legitimate.example\r\n',
  'a12-sender-only': 'From: \r\nSender: <admin@legitimate.example>\r\n',
  'a13-resent-from-only': 'From: undisclosed-recipients:;\r\nResent-From: <admin@legitimate.example>\r\n',
  'comment-hides-domain': 'From: admin@legitimate.example (Admin) <x@attack.example>\r\n',
};
for (const [name, block] of Object.entries(spoof)) files[`${name}.eml`] = block + tail;

// A leading U+00A0 (UTF-8) makes the line no From for either parser; it is only a malformed line.
files['nbsp-before-from.eml'] = Buffer.concat([
  Buffer.from([0xc2, 0xa0]),
  Buffer.from('From: <first@attack.example>\r\nFrom: <admin@legitimate.example>\r\n' + tail, 'latin1'),
]);

// Reliability H-04: a NUL inside a header name (Dovecot CVE-2011-1929).
files['nul-in-header-name.eml'] = 'X-A\x00B: c\r\nFrom: <billing@supplier.example>\r\n' + tail;

const clean = (from: string, extra = ''): string =>
  `From: ${from}\r\n${extra}To: Alice Martin <alice@example.com>\r\nSubject: Invoice 0312\r\n` +
  'Date: Fri, 14 Mar 2025 09:58:00 +0100\r\nMessage-ID: <inv-0312@supplier.example>\r\n\r\nPlease find the invoice attached.\r\n';

files['name-holds-other-address.eml'] = clean('"ceo@legitimate.example" <attacker@evil.example>');
files['name-fullwidth-at-our-address.eml'] = Buffer.from(clean('"ceo\uFF20example.com" <x@evil.example>'), 'utf8');
files['name-bidi-override.eml'] = clean('=?utf-8?q?=E2=80=AE?=fdp.eciovni <billing@supplier.example>');
files['name-protected-freemail.eml'] = clean('Jane Doe <jane.doe.office@gmail.com>');
files['name-protected-reversed-encoded.eml'] = clean('=?iso-8859-1?Q?Doe=2C_Jane_=28CEO=29?= <ceo.office@exec-mail.example>');
files['name-protected-internal.eml'] = clean('Jane Doe <jane.doe@example.com>');
files['name-names-our-domain.eml'] = clean('"IT Service Desk example.com" <helpdesk@support-desk.example.net>');
files['name-encoded-comma.eml'] = clean('=?iso-8859-1?Q?M=FCller=2C_Hans?= <hans.mueller@supplier.example>');
files['replyto-freemail.eml'] = clean('Billing <billing@supplier.example>', 'Reply-To: <supplier.billing@gmail.com>\r\n');
files['replyto-freemail-from-freemail.eml'] = clean('Bob <bob.smith@yahoo.com>', 'Reply-To: <bob.smith.2@gmail.com>\r\n');
files['replyto-other-org.eml'] = clean('News <news@supplier.example>', 'Reply-To: <community@lists.supplier-forum.example>\r\n');
files['replyto-same-org.eml'] = clean('Billing <billing@supplier.example>', 'Reply-To: <accounts@eu.supplier.example>\r\n');

files['subject-latin1-raw.eml'] = Buffer.from(clean('Billing <billing@supplier.example>').replace('Subject: Invoice 0312', 'Subject: Rechnung f\u00fcr M\u00e4rz'), 'latin1');
files['subject-utf8-raw.eml'] = Buffer.from(clean('Billing <billing@supplier.example>').replace('Subject: Invoice 0312', 'Subject: Rechnung f\u00fcr M\u00e4rz'), 'utf8');

const hop = (from: string, ip: string, by: string, when: string): string =>
  `Received: from ${from} (${from} [${ip}])\r\n\tby ${by} (Postfix) with ESMTPS id 4Z1${ip.replace(/\D/g, '')}\r\n\tfor <alice@example.com>; ${when}\r\n`;

files['date-month-before-hops.eml'] =
  hop('out.supplier.example', '203.0.113.9', 'mail.sender.example', 'Fri, 14 Mar 2025 09:59:10 +0100') +
  clean('Billing <billing@supplier.example>').replace('Date: Fri, 14 Mar 2025 09:58:00 +0100', 'Date: Tue, 11 Feb 2025 08:00:00 +0100');
files['date-day-before-hops.eml'] =
  hop('out.supplier.example', '203.0.113.9', 'mail.sender.example', 'Fri, 14 Mar 2025 09:59:10 +0100') +
  clean('Billing <billing@supplier.example>').replace('Date: Fri, 14 Mar 2025 09:58:00 +0100', 'Date: Thu, 13 Mar 2025 08:00:00 +0100');

const loop = (n: number): string =>
  Array.from({ length: n }, (_, i) => hop(`relay${i + 1}.loop.example`, `192.0.2.${(i % 250) + 1}`, `relay${i}.loop.example`, 'Fri, 14 Mar 2025 09:59:10 +0100')).join('');
files['received-101-hops.eml'] = loop(101) + clean('Billing <billing@supplier.example>');
files['received-30-hops.eml'] = loop(30) + clean('Billing <billing@supplier.example>');

files['received-out-of-order.eml'] =
  hop('out.supplier.example', '203.0.113.9', 'mail.sender.example', 'Fri, 14 Mar 2025 09:59:10 +0100') +
  hop('pc17.supplier.example', '198.51.100.77', 'out.supplier.example', 'Sun, 16 Mar 2025 09:59:00 +0100') +
  clean('Billing <billing@supplier.example>');
files['received-wrong-zone.eml'] =
  hop('out.supplier.example', '203.0.113.9', 'mail.sender.example', 'Fri, 14 Mar 2025 09:59:10 +0100') +
  hop('pc17.supplier.example', '198.51.100.77', 'out.supplier.example', 'Fri, 14 Mar 2025 09:59:00 -0700') +
  clean('Billing <billing@supplier.example>');
files['received-private-provider.eml'] =
  hop('mail-sor-f41.google.com', '10.0.0.5', 'mx.bulk-sender.example', 'Fri, 14 Mar 2025 09:59:10 +0100') +
  clean('Billing <billing@supplier.example>');
files['received-private-internal.eml'] =
  hop('smtp.supplier.example', '203.0.113.9', 'mail.sender.example', 'Fri, 14 Mar 2025 09:59:10 +0100') +
  hop('int-mx1.corp.supplier-group.example', '172.16.52.254', 'smtp.supplier.example', 'Fri, 14 Mar 2025 09:59:00 +0100') +
  hop('lists.supplier.example', '127.0.0.1', 'int-mx1.corp.supplier-group.example', 'Fri, 14 Mar 2025 09:58:40 +0100') +
  clean('Billing <billing@supplier.example>');

if (process.argv[1] === import.meta.filename) {
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
  console.log(`wrote ${Object.keys(files).length} files to ${dir}`);
}
