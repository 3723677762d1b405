// MIME structure: a message the bounded parse could not open is held (MIME_UNSCANNABLE), and cheap structural oddities.
import { defineCheck } from '../../check.ts';
import type { LimitHit } from '../../message-view.ts';

const CAP_SYMBOL = {
  depth: 'MIME_TOO_DEEP',
  parts: 'MIME_TOO_MANY_PARTS',
  'decoded-size': 'MIME_TOO_BIG_DECODED',
  params: 'MIME_PARAM_FLOOD',
  'header-size': 'MIME_HEADER_TOO_BIG',
  parser: undefined,
} as const satisfies Record<LimitHit, string | undefined>;

export const mime = defineCheck({
  name: 'mime',
  phase: 'data',
  symbols: {
    // Scored to reach the quarantine threshold (8) on its own: what could not be opened was not examined, so it is
    // never passed as clean (reliability M-01..M-04).
    MIME_UNSCANNABLE: {
      score: 8,
      group: 'content',
      description: 'The MIME parse could not open the message in full (a structure cap or a parser error); its parts went unexamined',
    },
    MIME_TOO_DEEP: { score: 1, group: 'content', description: 'Multipart or nested-message nesting deeper than the parse cap' },
    MIME_TOO_MANY_PARTS: { score: 1, group: 'content', description: 'More MIME parts than the parse cap' },
    MIME_TOO_BIG_DECODED: { score: 1, group: 'content', description: 'Decoded parts, nested messages counted per level, exceed the parse cap' },
    MIME_PARAM_FLOOD: {
      score: 1,
      group: 'content',
      description: 'A Content-Type or Content-Disposition with more parameters (RFC 2231 sections) than the parse cap, or a boundary over 2,048 octets',
    },
    MIME_HEADER_TOO_BIG: { score: 1, group: 'content', description: 'A header block, or all header blocks together, larger than the parse cap' },
    MIME_MISSING_TEXT: { score: 1, group: 'content', description: 'No inline text or HTML part: the message is only attachments' },
    MIME_HTML_ONLY: { score: 1, group: 'content', description: 'HTML body without a plain-text alternative' },
    MIME_BAD_CTE: {
      score: 1,
      group: 'content',
      description: 'Unknown Content-Transfer-Encoding, or base64/quoted-printable on a multipart or message/rfc822 (RFC 2045 6.4)',
    },
    MIME_BAD_CHARSET: { score: 1, group: 'content', description: 'A text part declares a charset no decoder knows' },
    MIME_BOUNDARY_MISSING: {
      score: 1.5,
      group: 'content',
      description: 'A multipart without a boundary parameter or without its closing delimiter (truncated or malformed)',
    },
    MIME_VERSION_MISSING: { score: 1.5, group: 'content', description: 'A multipart message without a MIME-Version header' },
  },
  async run({ message }, ctx) {
    if (!message) return;
    const r = await message.parse();
    if (r.limits.length || r.error) ctx.hit('MIME_UNSCANNABLE', { detail: [(r.error ?? r.limits.join(', ')).slice(0, 120)] });
    for (const l of r.limits) {
      const sym = CAP_SYMBOL[l];
      if (sym) ctx.hit(sym);
    }
    if (message.headersTruncated && !r.limits.includes('header-size')) ctx.hit('MIME_HEADER_TOO_BIG');
    const s = r.structure;
    // The counts of a scan that stopped at a cap describe only a part of the message.
    if (r.limits.length) return;
    if (s.textParts + s.htmlParts === 0 && s.otherParts > 0) ctx.hit('MIME_MISSING_TEXT', { detail: [String(s.otherParts)] });
    if (s.htmlParts > 0 && s.textParts === 0) ctx.hit('MIME_HTML_ONLY');
    if (s.badCte.length) ctx.hit('MIME_BAD_CTE', { detail: s.badCte.slice(0, 3) });
    if (s.badCharset.length) ctx.hit('MIME_BAD_CHARSET', { detail: s.badCharset.slice(0, 3) });
    if (s.unclosed) ctx.hit('MIME_BOUNDARY_MISSING', { detail: [String(s.unclosed)] });
    if (s.topType.startsWith('multipart/') && message.header('mime-version') === undefined) ctx.hit('MIME_VERSION_MISSING');
  },
});
