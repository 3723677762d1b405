// Message characteristics: the wording, HTML tricks and header habits that bulk and spam tools leave, judged from the
// message alone (SpamAssassin's body and header rules, Rspamd's MIME and HTML rules). Hit rates on the train half of
// the SpamAssassin development corpus, and how the scores were fitted, are in ./README.md.
import { z } from 'zod';
import { defineCheck } from '../../check.ts';
import { htmlTraits } from './html.ts';
import { newsletterFooter, randomTail, wordingOf } from './text.ts';
import { salesName, freemail } from './sender.ts';
import { bulkMailer, bulkMessageId, countRecipients, dateOddForm, forgedOutlookExpress, fromAddressDigits, subjectAdvertLabel, subjectExclaims, subjectMoney, subjectPadded, subjectShouts } from './headers.ts';
import type { MessageView } from '../../message-view.ts';

// Free-mail providers, the large ones of today and of the years the public spam corpora come from: a sales pitch
// from a free account is a throwaway sender's, not a company's.
const FREEMAIL = [
  'gmail.com', 'googlemail.com', 'yahoo.com', 'yahoo.co.uk', 'yahoo.ca', 'yahoo.fr', 'yahoo.de', 'ymail.com',
  'outlook.com', 'hotmail.com', 'hotmail.co.uk', 'hotmail.fr', 'live.com', 'msn.com', 'aol.com', 'icloud.com',
  'mail.com', 'email.com', 'gmx.com', 'gmx.de', 'gmx.net', 'web.de', 'yandex.ru', 'mail.ru', 'qq.com', '163.com',
  '126.com', 'sina.com', 'naver.com', 'libero.it', 'rediffmail.com', 'excite.com', 'lycos.com', 'netscape.net',
  'juno.com', 'bigfoot.com', 'caramail.com', 'usa.net', 'altavista.com', 'eudoramail.com', 'angelfire.com',
];

const options = z.strictObject({
  freemail_domains: z
    .array(z.string().min(1))
    .default(FREEMAIL)
    .meta({ description: 'Free-mail domains (and their subdomains), for FREEMAIL_SALES.' }),
  many_recipients: z
    .number()
    .int()
    .min(2)
    .default(15)
    .meta({ description: 'To and Cc together naming at least this many addresses give RCPT_MANY_VISIBLE.' }),
});

/** The Subject field as sent, blanks and folds kept (the header view trims them); '' when there is none. */
function rawSubject(message: MessageView): string {
  const end = message.headerBytes < 0 ? message.size : message.headerBytes;
  const head = message.raw.subarray(0, Math.min(end, 32 * 1024)).toString('latin1');
  const m = /^subject:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/im.exec(head);
  return m ? m[1].replace(/\r\n/g, '') : '';
}

export const content = defineCheck({
  name: 'content',
  phase: 'data',
  options,
  symbols: {
    SUBJ_ALL_CAPS: { score: 2.5, group: 'content', description: 'Subject of 3+ words almost entirely in capitals' },
    SUBJ_EXCLAIM: { score: 1, group: 'content', description: 'Subject with "!!", "$$" or three or more exclamation marks' },
    SUBJ_MONEY: { score: 2, group: 'content', description: 'Subject names money, a discount, cash, income or "free"' },
    SUBJ_PADDED: { score: 2, group: 'content', description: 'Subject with a run of five or more blanks, as bulk tools pad it' },
    SUBJ_ADV_LABEL: { score: 1.5, group: 'content', description: 'Subject starts with the "ADV:" advertisement label' },
    MSGID_BULK_FORM: { score: 2, group: 'content', description: "Message-ID in a bulk tool's zero-padded imitation of Outlook's form" },
    BODY_ADVANCE_FEE: { score: 2.5, group: 'content', description: 'Body uses seven or more words of advance-fee fraud (next of kin, transfer, confidential …)' },
    BODY_SALES_PHRASES: { score: 2, group: 'content', description: 'Body uses 3–5 distinct sales, money or urgency phrases' },
    BODY_SALES_PHRASES_MANY: { score: 2, group: 'content', description: 'Body uses 6–9 distinct sales, money or urgency phrases' },
    BODY_SALES_PHRASES_FLOOD: { score: 2, group: 'content', description: 'Body uses 10 or more distinct sales, money or urgency phrases' },
    BODY_REMOVAL_INSTRUCTIONS: { score: 1.5, group: 'content', description: 'Body tells how to be removed from a list (reply "remove", opt out) instead of a list header' },
    BODY_NOT_SPAM_CLAIM: { score: 1, group: 'content', description: 'Body claims it is not spam or cites bill S.1618' },
    BODY_OBFUSCATED_WORD: { score: 1.5, group: 'content', description: 'A sales word spelt with digits, symbols or spaces (v1agra, m0rtgage, F R E E)' },
    BODY_SHOUTING: { score: 1, group: 'content', description: 'A fifth or more of 30+ body words are in capitals' },
    BODY_MONEY_MANY: { score: 0.1, group: 'content', description: 'Body names five or more dollar amounts' },
    BODY_NEWSLETTER_FOOTER: { score: -1.5, group: 'content', description: "Body ends in a company newsletter's footer: a copyright notice and the subscriber's privacy or subscription terms" },
    BODY_RANDOM_TAIL: { score: 2.5, group: 'content', description: 'Body ends in a random token (xay1992361y, bdyjkpbwheot…) that makes each copy differ' },
    HTML_TINY_TEXT: { score: 0.1, group: 'content', description: 'HTML text in font size 1 or under 5 px/pt' },
    HTML_INVISIBLE_TEXT: { score: 0.3, group: 'content', description: 'HTML text coloured as its background or hidden by CSS' },
    HTML_COMMENT_SPLIT: { score: 1, group: 'content', description: 'An HTML comment splits a word' },
    HTML_IMAGE_ONLY: { score: 1.5, group: 'content', description: 'HTML with images and fewer than 200 letters of text' },
    HTML_FONT_MANY: { score: 0.1, group: 'content', description: 'HTML with 15 or more <font> tags' },
    BULK_NO_UNSUBSCRIBE: { score: 3.5, group: 'content', description: 'HTML-only mail with links and neither list headers nor an unsubscribe link' },
    FREEMAIL_SALES: { score: 2.5, group: 'content', description: 'From a free-mail address, and the body uses two or more sales phrases' },
    FROM_NAME_SALES: { score: 1.5, group: 'content', description: 'From display name is a sales role, not a person, and the body uses three or more sales phrases' },
    BODY_SALES_UNLISTED: { score: 1, group: 'content', description: 'Three or more sales phrases in mail without List-Id or List-Unsubscribe' },
    FROM_ADDR_DIGITS: { score: 1.5, group: 'content', description: 'From address whose local part runs three or more digits into letters' },
    MUA_BULK_TOOL: { score: 3, group: 'content', description: 'X-Mailer names a bulk-mail tool or a scripting library no person mails with' },
    MUA_FORGED_OUTLOOK: { score: 1, group: 'content', description: 'X-Mailer claims Outlook Express but the Message-ID is not of its form' },
    DATE_ODD_FORM: { score: 2.5, group: 'content', description: 'Date without a zone, without seconds or with a two-digit year' },
    TO_MISSING: { score: 0, group: 'content', description: 'No To header' },
    TO_UNDISCLOSED: { score: 1.5, group: 'content', description: 'To is "undisclosed-recipients" or an empty group' },
    RCPT_MANY_VISIBLE: { score: 1, group: 'content', description: 'To and Cc name many_recipients or more addresses' },
    PRIORITY_HIGH: { score: 2, group: 'content', description: 'X-Priority 1 or X-MSMail-Priority High' },
  },
  async run({ message }, ctx) {
    if (!message) return;
    const subject = message.subject ?? '';
    if (subjectShouts(subject)) ctx.hit('SUBJ_ALL_CAPS');
    if (subjectExclaims(subject)) ctx.hit('SUBJ_EXCLAIM');
    if (subjectMoney(subject)) ctx.hit('SUBJ_MONEY');
    if (subjectPadded(rawSubject(message))) ctx.hit('SUBJ_PADDED');
    if (subjectAdvertLabel(subject)) ctx.hit('SUBJ_ADV_LABEL');
    if (bulkMessageId(message.messageId)) ctx.hit('MSGID_BULK_FORM');

    const mailer = message.header('x-mailer') ?? message.header('user-agent') ?? '';
    if (mailer && bulkMailer(mailer)) ctx.hit('MUA_BULK_TOOL', { detail: [mailer.slice(0, 80)] });
    if (mailer && forgedOutlookExpress(mailer, message.messageId)) ctx.hit('MUA_FORGED_OUTLOOK');
    if (fromAddressDigits(message.header('from') ?? '')) ctx.hit('FROM_ADDR_DIGITS');
    const date = message.header('date');
    const odd = date === undefined ? undefined : dateOddForm(date);
    if (odd) ctx.hit('DATE_ODD_FORM', { detail: [odd] });
    const to = message.headerAll('to');
    if (to.length === 0) ctx.hit('TO_MISSING');
    else if (/undisclosed|^\s*[^@<>"]{0,60}:\s*;\s*$/i.test(to[0].slice(0, 200))) ctx.hit('TO_UNDISCLOSED');
    const rcpts = countRecipients([...to, ...message.headerAll('cc')], ctx.options.many_recipients);
    if (rcpts >= ctx.options.many_recipients) ctx.hit('RCPT_MANY_VISIBLE', { detail: [String(rcpts)] });
    if (/^\s*1\b/.test(message.header('x-priority') ?? '') || /^\s*high\b/i.test(message.header('x-msmail-priority') ?? '')) ctx.hit('PRIORITY_HIGH');

    const { email } = await message.parse();
    if (!email) return;
    const html = email.html ? htmlTraits(email.html) : undefined;
    const body = email.text || html?.text || '';
    const w = wordingOf(body);
    const phrases = [String(w.phrases), ...w.found];
    if (w.phrases >= 10) ctx.hit('BODY_SALES_PHRASES_FLOOD', { detail: phrases });
    else if (w.phrases >= 6) ctx.hit('BODY_SALES_PHRASES_MANY', { detail: phrases });
    else if (w.phrases >= 3) ctx.hit('BODY_SALES_PHRASES', { detail: phrases });
    const listed = message.header('list-unsubscribe') !== undefined || message.header('list-id') !== undefined;
    if (w.phrases >= 3 && !listed) ctx.hit('BODY_SALES_UNLISTED');
    const from = message.header('from') ?? '';
    if (w.phrases >= 2 && freemail(from, ctx.options.freemail_domains)) ctx.hit('FREEMAIL_SALES');
    if (w.phrases >= 3 && salesName(from)) ctx.hit('FROM_NAME_SALES');
    if (w.removal && !listed) ctx.hit('BODY_REMOVAL_INSTRUCTIONS');
    if (w.advanceFee >= 7) ctx.hit('BODY_ADVANCE_FEE', { detail: [String(w.advanceFee)] });
    if (w.disclaimer) ctx.hit('BODY_NOT_SPAM_CLAIM');
    if (w.obfuscated) ctx.hit('BODY_OBFUSCATED_WORD', { detail: [w.obfuscated] });
    if (w.words >= 30 && w.capsWords * 5 >= w.words) ctx.hit('BODY_SHOUTING', { detail: [`${w.capsWords}/${w.words}`] });
    if (w.dollars >= 5) ctx.hit('BODY_MONEY_MANY', { detail: [String(w.dollars)] });
    if (newsletterFooter(body)) ctx.hit('BODY_NEWSLETTER_FOOTER');
    const tail = randomTail(body);
    if (tail) ctx.hit('BODY_RANDOM_TAIL', { detail: [tail.slice(0, 40)] });
    if (!html) return;
    if (html.tiny) ctx.hit('HTML_TINY_TEXT');
    if (html.invisible) ctx.hit('HTML_INVISIBLE_TEXT', { detail: [html.invisible] });
    if (html.commentSplit) ctx.hit('HTML_COMMENT_SPLIT');
    if (html.imageOnly) ctx.hit('HTML_IMAGE_ONLY', { detail: [String(html.images)] });
    if (html.fontTags >= 15) ctx.hit('HTML_FONT_MANY', { detail: [String(html.fontTags)] });
    if (!email.text && html.links > 0 && !listed && !/unsubscribe|opt[- ]?out/i.test(html.text)) ctx.hit('BULK_NO_UNSUBSCRIBE');
  },
});
