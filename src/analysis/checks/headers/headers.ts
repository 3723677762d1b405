// Required headers (RFC 5322 3.6): From and Date present exactly once, Message-ID present and well formed.
import { z } from 'zod';
import { defineCheck } from '../../check.ts';

const options = z.strictObject({
  max_date_skew_days: z.number().min(1).default(7).meta({ description: 'How far Date may be in the future, in days.' }),
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
  },
  run({ message }, ctx) {
    if (!message) return;
    // A value that starts on a continuation line ("Message-ID:" CRLF " <…>", as Exchange writes it) is unfolded
    // with a leading space; trim so the form checks see the value itself.
    const froms = message.headerAll('from').map((v) => v.trim());
    if (froms.length === 0) ctx.hit('HDR_FROM_MISSING');
    else if (froms.length > 1) ctx.hit('HDR_FROM_MULTIPLE', { detail: froms.slice(0, 3) });
    else if (!addressPart(froms[0]).includes('@')) ctx.hit('HDR_FROM_NO_ADDRESS', { detail: [froms[0].slice(0, 80)] });

    const dates = message.headerAll('date');
    if (dates.length === 0) ctx.hit('HDR_DATE_MISSING');
    else {
      if (dates.length > 1) ctx.hit('HDR_DATE_MULTIPLE', { detail: dates.slice(0, 3) });
      const date = dates[0].trim().replace(/\s*\([^)]*\)\s*$/, '');
      const t = DATE_TIME.test(date) ? Date.parse(date) : NaN;
      if (Number.isNaN(t)) ctx.hit('HDR_DATE_INVALID', { detail: [dates[0].trim().slice(0, 60)] });
      else if (t - ctx.now() > ctx.options.max_date_skew_days * 86_400_000) ctx.hit('HDR_DATE_FUTURE', { detail: [date] });
    }

    const mid = message.header('message-id')?.trim();
    if (mid === undefined) ctx.hit('HDR_MSGID_MISSING');
    else if (!/^<[^<>@\s]+@[^<>@\s]+>$/.test(mid)) ctx.hit('HDR_MSGID_INVALID', { detail: [mid.slice(0, 80)] });

    if (message.headerAll('subject').length > 1) ctx.hit('HDR_SUBJECT_MULTIPLE');
    const bad = message.headers.find((h) => (h.name === '' ? h.value.length > 0 : !FIELD_NAME.test(h.name)));
    if (bad) ctx.hit('HDR_MALFORMED_LINE', { detail: [(bad.name ? `${bad.name}: ${bad.value}` : bad.value).slice(0, 60)] });
  },
});
