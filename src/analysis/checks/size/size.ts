// Size: empty bodies and messages above a soft limit.
import { z } from 'zod';
import { defineCheck } from '../../check.ts';

const options = z.strictObject({
  soft_limit_bytes: z
    .number()
    .int()
    .min(1024)
    .default(10 * 1024 * 1024)
    .meta({ description: 'Messages above this size get SIZE_OVER_SOFT_LIMIT.' }),
});

export const size = defineCheck({
  name: 'size',
  phase: 'data',
  options,
  symbols: {
    BODY_EMPTY: { score: 1, group: 'content', description: 'Message has no body' },
    SIZE_OVER_SOFT_LIMIT: { score: 0.5, group: 'content', description: 'Message is larger than soft_limit_bytes' },
  },
  run({ message }, ctx) {
    if (!message) return;
    if (message.raw.subarray(message.headerBytes < 0 ? message.size : message.headerBytes).toString('latin1').trim() === '') {
      ctx.hit('BODY_EMPTY');
    }
    if (message.size > ctx.options.soft_limit_bytes) ctx.hit('SIZE_OVER_SOFT_LIMIT', { detail: [String(message.size)] });
  },
});
