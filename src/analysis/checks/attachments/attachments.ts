// Attachments: real types against declared ones, programs and scripts, disguised names, archives opened under caps,
// macro documents, HTML smuggling and credential forms, active PDFs, the EICAR test file, and files that cannot be
// opened (never passed as clean).
import { z } from 'zod';
import { defineCheck } from '../../check.ts';
import { Inspector } from './inspect.ts';
import { SYMBOLS } from './symbols.ts';

const MIB = 1024 * 1024;
const int = (def: number, min: number, description: string) => z.number().int().min(min).default(def).meta({ description });

const options = z.strictObject({
  max_archive_depth: int(2, 1, 'Archives nested deeper than this are not opened; their content is reported as ATT_UNSCANNABLE.'),
  max_archive_members: int(1000, 1, 'Most archive members looked at in one message; an archive with more is ATT_ARCHIVE_BOMB.'),
  max_expanded_bytes: int(64 * MIB, MIB, 'Most bytes inflated from archives in one message, and most one archive may declare.'),
  max_compression_ratio: int(200, 10, 'Declared-to-compressed ratio above which a member larger than 1 MiB is ATT_ARCHIVE_BOMB.'),
  max_member_bytes: int(16 * MIB, 64 * 1024, 'Largest archive member inflated in full to open it; larger ones are judged by their start.'),
  max_message_depth: int(3, 0, 'Attached messages opened below those the MIME parser already expanded.'),
  max_attachments: int(200, 1, 'Most attachments judged in one message; more is ATT_UNSCANNABLE.'),
  max_document_bytes: int(16 * MIB, 1024, 'Bytes of a PDF or RTF document scanned for actions, embedded files and objects.'),
  max_html_bytes: int(2 * MIB, 1024, 'Bytes of an HTML or SVG attachment parsed for smuggling, forms and decoded scripts.'),
  scan_budget_ms: int(
    1500,
    0,
    'Time the walk may take; what is left unseen after it is ATT_UNSCANNABLE. Keep it below analysis.check_timeout_ms.',
  ),
});

export const attachments = defineCheck({
  name: 'attachments',
  phase: 'data',
  options,
  symbols: SYMBOLS,
  async run({ session, message }, ctx) {
    if (!message) return;
    // No parse for a message that cannot have attachments: one plain text part that is not itself an attachment.
    // Short ones are still parsed, for an EICAR body.
    const ct = message.header('content-type');
    const single = (ct === undefined || /^\s*text\/plain\b/i.test(ct)) && !/^\s*attachment\b/i.test(message.header('content-disposition') ?? '');
    if (single && message.bodyBytes > 256) return;
    // A message the parser would not open is held by the mime check (MIME_UNSCANNABLE); no second score here.
    const { email } = await message.parse();
    if (!email) return;
    if (!email.attachments.length && !email.text) return;
    const o = ctx.options;
    const inspector = new Inspector(
      {
        maxArchiveDepth: o.max_archive_depth,
        maxMembers: o.max_archive_members,
        maxExpandedBytes: o.max_expanded_bytes,
        maxRatio: o.max_compression_ratio,
        maxMemberBytes: o.max_member_bytes,
        maxMessageDepth: o.max_message_depth,
        maxAttachments: o.max_attachments,
        maxDocumentBytes: o.max_document_bytes,
        maxHtmlBytes: o.max_html_bytes,
        // A CPU budget, so the monotonic clock rather than ctx.now() (the message clock, fixed in tests).
        deadline: performance.now() + o.scan_budget_ms,
      },
      session.ourDomains,
      ctx.signal,
    );
    await inspector.message(email);
    await inspector.otherNames(message.raw, email);
    inspector.finish(email.subject);
    for (const [sym, h] of inspector.found.hits) ctx.hit(sym, { detail: h.detail, weight: h.weight });
  },
});
