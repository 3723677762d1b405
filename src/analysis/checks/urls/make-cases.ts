// Builds the URL fixtures: phishing lures (IP-literal, numeric-IP, user-info, look-alike and shortened links, a
// link showing one domain and going to another, a credential form) and clean mail (a tracked newsletter, a reply
// thread, an invoice notice) as real MIME messages composed with nodemailer's MailComposer.
// Run: node --import tsx src/analysis/checks/urls/make-cases.ts
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import MailComposer from 'nodemailer/lib/mail-composer';
import type Mail from 'nodemailer/lib/mailer';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cases');
const DATE = new Date('2025-03-14T09:12:00Z');

async function write(file: string, mail: Mail.Options): Promise<void> {
  const options = {
    date: DATE,
    messageId: `<${file.replace(/\.eml$/, '')}.20250314@fixtures.postern.test>`,
    to: 'alice@example.com',
    // A fixed boundary keeps the generated files stable from one run to the next.
    baseBoundary: 'postern-urls-fixture',
    ...mail,
  } as Mail.Options;
  const raw = await new MailComposer(options).compile().build();
  fs.writeFileSync(path.join(DIR, file), raw);
}

const page = (body: string) => `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>${body}</body></html>`;

// ---- lures ----

await write('ip-literal-link.eml', {
  from: '"IT Service Desk" <helpdesk@northwind-it.example>',
  subject: 'Scheduled maintenance of the webmail portal',
  text: 'The webmail portal moves tonight. Bookmark the new address: http://203.0.113.77:8080/webmail/\n',
  html: page('<p>The webmail portal moves tonight.</p><p><a href="http://203.0.113.77:8080/webmail/">Open the new portal</a></p>'),
});

await write('numeric-ip-link.eml', {
  from: '"Account Services" <service@accounts-center.example>',
  subject: 'Statement available',
  text:
    'Your statement is available:\nhttp://3405803853/statements/march.html\n\n' +
    'Mirror: http://0xCB.0x00.0x71.0x4D/statements/march.html\n',
});

await write('userinfo-host-trick.eml', {
  from: '"PayPal" <service@intl-paypal.example>',
  subject: 'Receipt for your payment',
  text: 'View the receipt: http://www.paypal.com@receipts.evil-host.example/r/8812\n',
  html: page('<p>View the receipt: <a href="http://www.paypal.com@receipts.evil-host.example/r/8812">www.paypal.com/receipts</a></p>'),
});

await write('ftp-userinfo.eml', {
  from: '"Build Bot" <builds@ci.fabrikam.example>',
  subject: 'Nightly build 2025-03-14 ready',
  text: 'The nightly build is on the release server:\nftp://builder@files.fabrikam.example/nightly/2025-03-14/\n',
});

await write('anchor-mismatch-paypal.eml', {
  from: '"PayPal" <service@paypal.com>',
  subject: 'Action required on your account',
  text: 'Please review the recent changes to your account.\n',
  html: page(
    '<p>Dear customer,</p><p>Please review the recent changes to your account:</p>' +
      '<p><a href="http://paypal-support.evil-host.example/signin?case=4411">https://www.paypal.com/</a></p>',
  ),
});

await write('punycode-cyrillic-paypal.eml', {
  from: '"PayPal Security" <security@xn--pypal-4ve.com>',
  subject: 'Your account has been limited',
  text:
    'We noticed unusual sign-in activity on your account.\n' +
    'Verify your account within 24 hours to restore full access:\nhttps://xn--pypal-4ve.com/signin\n',
  html: page(
    '<p>We noticed unusual sign-in activity on your account.</p>' +
      '<p>Verify your account within 24 hours to restore full access:</p>' +
      '<p><a href="https://xn--pypal-4ve.com/signin">Sign in</a></p>',
  ),
});

// "аррӏе" written entirely in Cyrillic: one script, so not mixed, yet it reads as apple.
await write('whole-script-cyrillic-apple.eml', {
  from: '"Apple" <noreply@id-support.example>',
  subject: 'Your Apple ID was used to sign in',
  text: 'If this was not you, review your Apple ID at https://xn--80ak6aa92e.com/account\n',
});

await write('ascii-lookalike-paypa1.eml', {
  from: '"PayPal" <service@paypa1.com>',
  subject: 'Important: account review',
  text:
    'Your account has been limited until we hear from you.\n' +
    'Confirm your identity here: https://www.paypa1.com/cgi-bin/webscr?cmd=login\n',
  html: page(
    '<p>Your account has been limited until we hear from you.</p>' +
      '<p><a href="https://www.paypa1.com/cgi-bin/webscr?cmd=login">Confirm your identity</a></p>',
  ),
});

await write('own-domain-lookalike.eml', {
  from: '"IT Support" <it-support@exarnple.com>',
  subject: 'Your password expires today',
  text:
    'Your password expires today. Keep your current password by signing in:\n' +
    'https://mail.exarnple.com/owa/auth/keep-password\n',
});

await write('shortener-link.eml', {
  from: '"Parcel Updates" <updates@parcel-notice.example>',
  subject: 'Your parcel is on its way',
  text: 'Track your parcel: https://bit.ly/3xYzAbC\n',
});

await write('phish-form-offsite.eml', {
  from: '"Mail Administrator" <postmaster@mailadmin-notice.example>',
  subject: 'Mailbox quota exceeded',
  text: 'Your mailbox quota is exceeded. Verify your account to keep receiving mail.\n',
  html: page(
    '<p>Your mailbox quota is exceeded. Verify your account to keep receiving mail.</p>' +
      '<form action="https://collect.evil-host.example/owa.php" method="post">' +
      'E-mail: <input type="email" name="u"><br>Password: <input type="password" name="p"><br>' +
      '<input type="submit" value="Verify"></form>',
  ),
});

// The same wording as a lure, but with nothing to click: an internal reminder.
await write('password-notice-no-link.eml', {
  from: '"IT Department" <it@example.com>',
  subject: 'Your password expires in 5 days',
  text:
    'Your password expires in 5 days.\n' +
    'Change it on your workstation: press Ctrl+Alt+Del and choose "Change a password".\n\nIT Department\n',
});

const many = Array.from({ length: 24 }, (_, i) => `https://catalogue.tailspin-toys.example/item/${1000 + i}`);
await write('many-urls.eml', {
  from: '"Tailspin Toys" <catalogue@tailspin-toys.example>',
  subject: 'The spring catalogue',
  text: `Our spring catalogue:\n${many.join('\n')}\n`,
});

// ---- clean ----

const click = (target: string, id: number) =>
  `https://click.northwind-outfitters.com/ls/click?upn=${id}a9f2&u=${encodeURIComponent(target)}`;
const items = ['jackets', 'boots', 'tents', 'backpacks', 'gloves', 'stoves', 'lamps', 'maps'];
await write('newsletter-tracking.eml', {
  from: '"Northwind Outfitters" <news@northwind-outfitters.com>',
  subject: 'Spring sale: 20% off outdoor gear',
  // MailComposer writes only the headers it is given (the List-* helpers belong to the transport layer).
  headers: {
    'List-Id': 'Northwind Outfitters news <newsletter.northwind-outfitters.com>',
    'List-Unsubscribe': '<https://list.esp-mailer.net/unsubscribe?u=77f1&id=3c2e>, <mailto:unsubscribe@esp-mailer.net?subject=77f1>',
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
  },
  text:
    'Spring sale: 20% off outdoor gear.\n\n' +
    items.map((x, i) => `${x}: ${click(`https://www.northwind-outfitters.com/${x}`, i)}`).join('\n') +
    '\n\nUnsubscribe: https://list.esp-mailer.net/unsubscribe?u=77f1&id=3c2e\n',
  html: page(
    '<table><tr><td><a href="' +
      click('https://www.northwind-outfitters.com/', 90) +
      '">www.northwind-outfitters.com</a></td></tr>' +
      items
        .map((x, i) => `<tr><td><a href="${click(`https://www.northwind-outfitters.com/${x}`, i)}">Shop ${x}</a></td></tr>`)
        .join('') +
      `<tr><td>Our partner: <a href="${click('https://www.contoso-trails.com/', 91)}">www.contoso-trails.com</a></td></tr>` +
      '<tr><td><a href="https://links.esp-mailer.net/v/77f1-3c2e">northwind-outfitters.com/stores</a></td></tr>' +
      '<tr><td><a href="https://list.esp-mailer.net/unsubscribe?u=77f1&amp;id=3c2e">Unsubscribe</a></td></tr>' +
      '</table><form action="https://www.northwind-outfitters.com/search"><input name="q"><input type="submit"></form>' +
      '<img src="https://click.northwind-outfitters.com/open/77f1.gif" width="1" height="1" alt="">',
  ),
});

await write('reply-thread.eml', {
  from: '"Bob Meyer" <bob@fabrikam.example>',
  to: 'alice@example.com',
  subject: 'Re: spec review',
  inReplyTo: '<spec-review-1.20250313@example.com>',
  references: ['<spec-review-1.20250313@example.com>'],
  text:
    'Hi Alice,\n\nThe updated draft is here: https://docs.fabrikam.example/spec/v2\n' +
    'The adapter we talked about: https://www.amazon.de/dp/B000123456 (the .com listing is the same item).\n' +
    'I paid the fee through https://www.paypal.com/ as usual.\n\nBob\n\n' +
    'On Thu, 13 Mar 2025, Alice wrote:\n> Could you send the link to the new draft?\n> Thanks, Alice\n',
});

await write('invoice-notification.eml', {
  from: '"Contoso Supplies Billing" <invoices@billing.contoso-supplies.com>',
  subject: 'Invoice INV-2025-0042 is ready',
  text:
    'Hello,\n\nInvoice INV-2025-0042 (EUR 1,240.00) is ready.\n' +
    'View it at https://billing.contoso-supplies.com/invoices/INV-2025-0042\n\nContoso Supplies\n',
  html: page(
    '<p>Hello,</p><p>Invoice INV-2025-0042 (EUR 1,240.00) is ready.</p>' +
      '<p><a href="https://billing.contoso-supplies.com/invoices/INV-2025-0042">https://billing.contoso-supplies.com/invoices/INV-2025-0042</a></p>' +
      '<p>Sign in to your account at <a href="https://www.contoso-supplies.com/account">www.contoso-supplies.com</a></p>',
  ),
});
