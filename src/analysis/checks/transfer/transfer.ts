// What the DATA reader noticed on the wire: bare line ends that were normalized, undeclared 8-bit data.
import { defineCheck } from '../../check.ts';

export const transfer = defineCheck({
  name: 'transfer',
  phase: 'data',
  symbols: {
    BARE_NEWLINE: { score: 1, group: 'protocol', description: 'Bare CR or LF in the data, normalized to CRLF' },
    EIGHTBIT_UNDECLARED: {
      score: 0.5,
      group: 'protocol',
      description: '8-bit octets in the data without BODY=8BITMIME or SMTPUTF8',
    },
  },
  run({ transfer: t }, ctx) {
    if (!t) return;
    if (t.bareNewlines > 0) ctx.hit('BARE_NEWLINE', { detail: [String(t.bareNewlines)] });
    if (t.eightBitUndeclared) ctx.hit('EIGHTBIT_UNDECLARED');
  },
});
