// Header form and identity: required headers (RFC 5322 3.6), an author readers and DMARC agree on, what the display
// name claims, Reply-To and envelope domains, and the Received chain.
import { z } from 'zod';
import { defineCheck } from '../../check.ts';
import { addressParser } from 'postal-mime';
import { addressesInName, analyseAuthor, BIDI_CONTROL, domainOf, inDomains, nameWords, normaliseName, orgDomain } from './from.ts';
import { parseHop, privateForeignHop } from './received.ts';

// Free-mail providers (SpamAssassin's freemail_domains, shortened to the largest): a reply address there while the
// message comes from a company's own domain is the usual shape of invoice and CEO fraud.
const FREEMAIL = [
  'gmail.com', 'googlemail.com', 'yahoo.com', 'yahoo.co.uk', 'yahoo.fr', 'yahoo.de', 'ymail.com', 'rocketmail.com',
  'outlook.com', 'hotmail.com', 'hotmail.co.uk', 'hotmail.fr', 'hotmail.de', 'live.com', 'msn.com', 'aol.com',
  'icloud.com', 'me.com', 'mac.com', 'mail.com', 'gmx.com', 'gmx.de', 'gmx.net', 'web.de', 't-online.de',
  'yandex.ru', 'yandex.com', 'mail.ru', 'protonmail.com', 'proton.me', 'zoho.com', 'qq.com', '163.com', '126.com',
  'naver.com', 'libero.it', 'orange.fr', 'laposte.net', 'seznam.cz', 'wp.pl', 'o2.pl', 'rediffmail.com',
];

const options = z.strictObject({
  max_date_skew_days: z.number().min(1).default(7).meta({ description: 'How far Date may be in the future, in days.' }),
  max_date_age_days: z
    .number()
    .min(1)
    .default(7)
    .meta({ description: 'How far Date may lie before the earliest Received time stamp, in days.' }),
  max_received: z
    .number()
    .int()
    .min(1)
    .default(50)
    .meta({ description: 'Received headers above which the message is taken for a loop (Postfix hopcount_limit).' }),
  received_skew_minutes: z
    .number()
    .min(0)
    .default(1440)
    // A day: servers with a wrong time zone stamp hops up to 14 hours off (seen in the SpamAssassin ham corpus).
    .meta({ description: 'How much later than the hop above it a Received time stamp may be before the chain is out of order.' }),
  protected_names: z
    .array(z.string().min(1))
    .default([])
    .meta({ description: 'Names of people whose name in a display name from an outside address is impersonation, e.g. "Jane Doe".' }),
  freemail_domains: z.array(z.string().min(1)).default(FREEMAIL).meta({ description: 'Free-mail domains, for HDR_REPLYTO_FREEMAIL.' }),
});

// RFC 5322 3.3 date-time, with the obsolete forms of 4.3 (two-digit years, alphabetic zones) that real mailers still
// write: [day-of-week ","] day month year hour ":" minute [":" second] [zone]. Date.parse alone accepts "1" or
// "2025-03-04" as dates.
const DATE_TIME =
  /^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s+(?:[+-]\d{4}|[A-Za-z]{1,5}))?$/i;

// RFC 5322 2.2: a field name is one or more printable US-ASCII characters other than the colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** The address part of a From value: inside <…> when present, otherwise the value without quoted strings and comments. */
function addressPart(value: string): string {
  const noQuotes = value.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\([^()]*\)/g, '');
  const angle = /<([^<>]*)>/.exec(noQuotes);
  return angle ? angle[1] : noQuotes;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The first of our domains the display name names (as a domain or inside an address), at a word boundary. */
function normalisedHas(name: string, domains: readonly string[]): string | undefined {
  const n = normaliseName(name);
  return domains.find((d) => {
    const i = n.indexOf(d.toLowerCase());
    if (i < 0) return false;
    const before = n[i - 1];
    const after = n[i + d.length];
    return (before === undefined || !/[a-z0-9-]/.test(before)) && (after === undefined || !/[a-z0-9-]/.test(after));
  });
}

/** The first address of a Reply-To value. */
function analyseReplyTo(value: string): string {
  const a = addressParser(value)[0];
  return a && 'address' in a && a.address ? a.address : '';
}

export const headers = defineCheck({
  name: 'headers',
  phase: 'data',
  options,
  symbols: {
    HDR_FROM_MISSING: { score: 3, group: 'headers', description: 'No From header' },
    HDR_FROM_MULTIPLE: {
      score: 5,
      group: 'headers',
      description: 'More than one From header; readers and DMARC may disagree on who sent it',
    },
    HDR_FROM_NO_ADDRESS: {
      score: 2,
      group: 'headers',
      description: 'From header contains no address (an address inside the display name does not count)',
    },
    HDR_DATE_MISSING: { score: 1.5, group: 'headers', description: 'No Date header' },
    HDR_DATE_MULTIPLE: { score: 1, group: 'headers', description: 'More than one Date header' },
    HDR_DATE_INVALID: { score: 1, group: 'headers', description: 'Date header is not an RFC 5322 date-time' },
    HDR_DATE_FUTURE: { score: 2, group: 'headers', description: 'Date is further in the future than max_date_skew_days' },
    HDR_MSGID_MISSING: { score: 1, group: 'headers', description: 'No Message-ID header' },
    HDR_MSGID_INVALID: { score: 0.5, group: 'headers', description: 'Message-ID is not of the form <left@right>' },
    HDR_SUBJECT_MULTIPLE: { score: 1, group: 'headers', description: 'More than one Subject header' },
    HDR_MALFORMED_LINE: {
      score: 1.5,
      group: 'headers',
      description: 'A header line without a name and colon, or with a name that is not printable ASCII without spaces',
    },
    // Scored to hold the message by itself, and outside the capped headers group: which author DMARC evaluated is
    // then not the one the reader sees (reliability 2.1; RFC 7489 6.6.1 lets receivers reject such mail).
    HDR_FROM_AMBIGUOUS: {
      score: 9,
      group: 'auth',
      description: 'Readers and DMARC may see different authors: several From fields or addresses, a folded or encoded From, or only Sender',
    },
    // Below rspamd's 4: forwarding services write the original address into the name ("a@b.example [via]").
    HDR_FROM_NAME_ADDRESS: {
      score: 2,
      group: 'headers',
      description: 'The From display name holds an address of another domain than the From address',
    },
    HDR_NAME_PROTECTED: {
      score: 6,
      group: 'business',
      description: 'The From display name is one of protected_names while the address is outside our domains',
    },
    HDR_NAME_OUR_DOMAIN: {
      score: 4,
      group: 'business',
      description: 'The From display name names one of our domains or addresses while the address is outside them',
    },
    HDR_BIDI_CONTROL: {
      score: 2,
      group: 'headers',
      description: 'Bidirectional override or isolate characters in the From display name or the Subject',
    },
    HDR_DATE_PAST: {
      score: 0.5,
      group: 'headers',
      description: 'Date is more than max_date_age_days before the earliest Received time stamp',
    },
    HDR_REPLYTO_FREEMAIL: {
      score: 3,
      group: 'headers',
      description: 'Reply-To is a free-mail address of another domain than From (full weight when From is not free-mail)',
    },
    // Informational: mailing lists and newsletters set Reply-To elsewhere far more often than spam does.
    HDR_REPLYTO_DIFFERENT: { score: 0, group: 'headers', description: 'Reply-To is in another organisation than From (informational)' },
    // Informational, as rspamd's FROM_NEQ_ENVFROM: lists and mailing services bounce to their own domain.
    HDR_ENVFROM_DIFFERENT: {
      score: 0,
      group: 'headers',
      description: 'The envelope sender is in another organisation than From (informational; lists and mailing services)',
    },
    HDR_8BIT_RAW: {
      score: 1.5,
      group: 'headers',
      description: 'Raw 8-bit octets in the header block without SMTPUTF8, or not UTF-8 at all (RFC 6532; encoded words are the 7-bit form)',
    },
    HDR_RCVD_TOO_MANY: { score: 5, group: 'headers', description: 'More Received headers than max_received: a mail loop' },
    HDR_RCVD_TIME_ORDER: {
      score: 1,
      group: 'headers',
      description: 'A Received time stamp is later than the hop above it by more than received_skew_minutes',
    },
    HDR_RCVD_PRIVATE_FOREIGN: {
      score: 2,
      group: 'headers',
      description: 'A Received hop from a private address whose client claims to be a server of a large mail provider',
    },
  },
  run({ message, session, envelope }, ctx) {
    if (!message) return;
    // A value that starts on a continuation line ("Message-ID:" CRLF " <…>", as Exchange writes it) is unfolded
    // with a leading space; trim so the form checks see the value itself.
    const froms = message.headerAll('from').map((v) => v.trim());
    if (froms.length === 0) ctx.hit('HDR_FROM_MISSING');
    else if (froms.length > 1) ctx.hit('HDR_FROM_MULTIPLE', { detail: froms.slice(0, 3) });
    else if (!addressPart(froms[0]).includes('@')) ctx.hit('HDR_FROM_NO_ADDRESS', { detail: [froms[0].slice(0, 80)] });

    let dateTime: number | undefined;
    const dates = message.headerAll('date');
    if (dates.length === 0) ctx.hit('HDR_DATE_MISSING');
    else {
      if (dates.length > 1) ctx.hit('HDR_DATE_MULTIPLE', { detail: dates.slice(0, 3) });
      const date = dates[0].trim().replace(/\s*\([^)]*\)\s*$/, '');
      const t = DATE_TIME.test(date) ? Date.parse(date) : NaN;
      if (Number.isNaN(t)) ctx.hit('HDR_DATE_INVALID', { detail: [dates[0].trim().slice(0, 60)] });
      else {
        dateTime = t;
        if (t - ctx.now() > ctx.options.max_date_skew_days * 86_400_000) ctx.hit('HDR_DATE_FUTURE', { detail: [date] });
      }
    }

    const mid = message.header('message-id')?.trim();
    if (mid === undefined) ctx.hit('HDR_MSGID_MISSING');
    else if (!/^<[^<>@\s]+@[^<>@\s]+>$/.test(mid)) ctx.hit('HDR_MSGID_INVALID', { detail: [mid.slice(0, 80)] });

    if (message.headerAll('subject').length > 1) ctx.hit('HDR_SUBJECT_MULTIPLE');
    const bad = message.headers.find((h) => (h.name === '' ? h.value.length > 0 : !FIELD_NAME.test(h.name)));
    if (bad) ctx.hit('HDR_MALFORMED_LINE', { detail: [(bad.name ? `${bad.name}: ${bad.value}` : bad.value).slice(0, 60)] });

    // Reliability H-08 (Postfix MIME_ERR_8BIT_IN_HEADER): 8-bit header octets belong to SMTPUTF8 mail, as UTF-8.
    const headEnd = Math.min(message.headerBytes < 0 ? message.size : message.headerBytes, 256 * 1024);
    const head = message.raw.toString('latin1', 0, headEnd);
    if (/[\x80-\xff]/.test(head)) {
      let utf8 = true;
      try {
        UTF8.decode(message.raw.subarray(0, headEnd));
      } catch {
        utf8 = false;
      }
      if (!utf8 || !envelope?.smtputf8) ctx.hit('HDR_8BIT_RAW', { detail: [utf8 ? 'UTF-8 without SMTPUTF8' : 'not UTF-8'] });
    }

    const o = ctx.options;
    const ours = session.ourDomains;
    const author = analyseAuthor(message);
    if (author.ambiguous.length) ctx.hit('HDR_FROM_AMBIGUOUS', { detail: author.ambiguous.slice(0, 3) });
    const fromDomain = author.shown ? domainOf(author.shown) : '';
    if (fromDomain) {
      const foreign = addressesInName(author.name).find((d) => orgDomain(d) !== orgDomain(fromDomain));
      if (foreign) ctx.hit('HDR_FROM_NAME_ADDRESS', { detail: [author.name.slice(0, 80)] });
      if (!inDomains(fromDomain, ours)) {
        const words = nameWords(author.name);
        const person = o.protected_names.find((p) => {
          const want = nameWords(p);
          return want.length > 0 && want.every((w) => words.includes(w)) && words.length <= want.length + 2;
        });
        if (person) ctx.hit('HDR_NAME_PROTECTED', { detail: [person, author.shown] });
        const named = normalisedHas(author.name, ours);
        if (named) ctx.hit('HDR_NAME_OUR_DOMAIN', { detail: [named, author.shown] });
      }
    }
    if (BIDI_CONTROL.test(author.name) || BIDI_CONTROL.test(message.subject ?? '')) ctx.hit('HDR_BIDI_CONTROL');

    const hops = message.headerAll('received').map(parseHop);
    // Measured against the earliest hop, not our own: a message re-delivered later (fetchmail, a restored
    // mailbox) keeps the times of its first hops, and a stale Date is stale against those too.
    let firstHop = Infinity;
    for (const h of hops) if (h.time < firstHop) firstHop = h.time;
    if (dateTime !== undefined && Number.isFinite(firstHop) && firstHop - dateTime > o.max_date_age_days * 86_400_000) {
      ctx.hit('HDR_DATE_PAST', { detail: [`${Math.round((firstHop - dateTime) / 86_400_000)} days`] });
    }
    if (hops.length > o.max_received) ctx.hit('HDR_RCVD_TOO_MANY', { detail: [String(hops.length)] });
    let newer = NaN;
    for (const h of hops) {
      if (Number.isNaN(h.time)) continue;
      if (!Number.isNaN(newer) && h.time - newer > o.received_skew_minutes * 60_000) {
        ctx.hit('HDR_RCVD_TIME_ORDER', { detail: [`${h.fromHost || '?'} by ${h.byHost || '?'}: ${Math.round((h.time - newer) / 60_000)} min late`] });
        break;
      }
      newer = h.time;
    }
    const forged = hops.find((h) => privateForeignHop(h, o.freemail_domains));
    if (forged) ctx.hit('HDR_RCVD_PRIVATE_FOREIGN', { detail: [`${forged.fromHost} [${forged.fromIp}] by ${forged.byHost}`] });

    if (fromDomain) {
      const replyTo = message.header('reply-to');
      const reply = replyTo ? analyseReplyTo(replyTo) : '';
      if (reply) {
        const rd = domainOf(reply);
        if (orgDomain(rd) !== orgDomain(fromDomain)) {
          const free = o.freemail_domains.includes(rd);
          if (free) ctx.hit('HDR_REPLYTO_FREEMAIL', { weight: o.freemail_domains.includes(fromDomain) ? 0.5 : 1, detail: [reply] });
          else ctx.hit('HDR_REPLYTO_DIFFERENT', { detail: [reply] });
        }
      }
      const env = envelope?.mailFrom || '';
      if (env.includes('@') && orgDomain(domainOf(env)) !== orgDomain(fromDomain)) ctx.hit('HDR_ENVFROM_DIFFERENT', { detail: [env] });
    }
  },
});
