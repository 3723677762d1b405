// Required headers (RFC 5322 3.6): From and Date present exactly once, Message-ID present and well formed.
import { z } from 'zod';
import { defineCheck } from '../../check.ts';

const options = z.strictObject({
  max_date_skew_days: z.number().min(1).default(7).meta({ description: 'How far Date may be in the future, in days.' }),
});

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
    HDR_FROM_NO_ADDRESS: { score: 2, group: 'headers', description: 'From header contains no address' },
    HDR_DATE_MISSING: { score: 1.5, group: 'headers', description: 'No Date header' },
    HDR_DATE_INVALID: { score: 1, group: 'headers', description: 'Date header cannot be parsed' },
    HDR_DATE_FUTURE: { score: 2, group: 'headers', description: 'Date is further in the future than max_date_skew_days' },
    HDR_MSGID_MISSING: { score: 1, group: 'headers', description: 'No Message-ID header' },
    HDR_MSGID_INVALID: { score: 0.5, group: 'headers', description: 'Message-ID is not of the form <left@right>' },
    HDR_SUBJECT_MULTIPLE: { score: 1, group: 'headers', description: 'More than one Subject header' },
    HDR_MALFORMED_LINE: { score: 1.5, group: 'headers', description: 'A header line without a name and colon' },
  },
  run({ message }, ctx) {
    if (!message) return;
    const froms = message.headerAll('from');
    if (froms.length === 0) ctx.hit('HDR_FROM_MISSING');
    else if (froms.length > 1) ctx.hit('HDR_FROM_MULTIPLE', { detail: froms.slice(0, 3) });
    else if (!/@/.test(froms[0])) ctx.hit('HDR_FROM_NO_ADDRESS', { detail: [froms[0].slice(0, 80)] });

    const date = message.header('date');
    if (date === undefined) ctx.hit('HDR_DATE_MISSING');
    else {
      const t = Date.parse(date.replace(/\s*\([^)]*\)\s*$/, ''));
      if (Number.isNaN(t)) ctx.hit('HDR_DATE_INVALID', { detail: [date.slice(0, 60)] });
      else if (t - ctx.now() > ctx.options.max_date_skew_days * 86_400_000) ctx.hit('HDR_DATE_FUTURE', { detail: [date] });
    }

    const mid = message.header('message-id');
    if (mid === undefined) ctx.hit('HDR_MSGID_MISSING');
    else if (!/^<[^<>@\s]+@[^<>@\s]+>$/.test(mid)) ctx.hit('HDR_MSGID_INVALID', { detail: [mid.slice(0, 80)] });

    if (message.headerAll('subject').length > 1) ctx.hit('HDR_SUBJECT_MULTIPLE');
    const bad = message.headers.find((h) => h.name === '' && h.value.length > 0);
    if (bad) ctx.hit('HDR_MALFORMED_LINE', { detail: [bad.value.slice(0, 60)] });
  },
});
