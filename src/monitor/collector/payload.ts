// What a webmail installation posts to the collector: one event or a batch of them, each a login, a failed login,
// a logout, a message sent or a message read, checked in full before any is taken.
import net from 'node:net';
import { z } from 'zod';

/** The most events in one request: a webmail that queues while Postern is away sends them in pieces. */
export const MAX_BATCH = 500;
/** How far ahead of Postern's clock an event may be dated (clock skew); beyond, it is refused. */
export const MAX_FUTURE_MS = 3_600_000;
/** The most recipients recorded of one sent message. */
const MAX_TO = 1_000;

const address = z.string().trim().min(1, 'empty').max(320, 'longer than 320 characters');

const ts = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : /^\d{4}-\d{2}-\d{2}T/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) {
    ctx.addIssue({ code: 'custom', message: 'expected milliseconds since the epoch or an ISO 8601 time such as 2026-11-30T09:00:00Z' });
    return z.NEVER;
  }
  if (n > Date.now() + MAX_FUTURE_MS) {
    ctx.addIssue({ code: 'custom', message: 'more than an hour in the future (is the webmail\'s clock right?)' });
    return z.NEVER;
  }
  return n;
});

const base = {
  user: address,
  client_ip: z
    .string()
    .trim()
    .refine((s) => net.isIP(s) !== 0, "expected the client's IP address (the browser's, not a proxy's)")
    .transform((s) => s.replace(/^::ffff:/i, '')),
  user_agent: z.string().max(512, 'longer than 512 characters').optional(),
  ts: ts.optional(),
  session: z.string().regex(/^[\x21-\x7e]{1,128}$/, 'expected up to 128 printable characters without spaces').optional(),
};

const text = (max: number) => z.string().max(max, `longer than ${max} characters`);

export const WebmailEvent = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('login'), ...base }),
    z.strictObject({ type: z.literal('login_failed'), ...base }),
    z.strictObject({ type: z.literal('logout'), ...base }),
    z.strictObject({
      type: z.literal('send'),
      ...base,
      to: z.array(address).min(1, 'at least one recipient').max(MAX_TO, `at most ${MAX_TO} recipients`),
      message_id: text(998).optional(),
      size: z.number().int().min(0).optional(),
    }),
    z.strictObject({
      type: z.literal('read'),
      ...base,
      folder: text(512).optional(),
      uid: z.number().int().min(1).optional(),
      message_id: text(998).optional(),
    }),
  ],
  { error: 'expected type "login", "login_failed", "logout", "send" or "read"' },
);
export type WebmailEvent = z.infer<typeof WebmailEvent>;

/**
 * The events of a body, or the message of a 400 that names each bad field with its index in the batch
 * (`[3].client_ip: …`); nothing of a batch with one bad event is taken.
 */
export function parseWebmailBody(body: unknown): { events: WebmailEvent[]; batch: boolean } | { error: string } {
  // A batch is checked item by item, so that the message names the item and not the union's every branch.
  if (Array.isArray(body)) {
    if (!body.length) return { error: 'body: an empty batch' };
    if (body.length > MAX_BATCH) return { error: `body: at most ${MAX_BATCH} events in one batch, not ${body.length}` };
    const events: WebmailEvent[] = [];
    const errors: string[] = [];
    body.forEach((item, i) => {
      const r = WebmailEvent.safeParse(item);
      if (r.success) events.push(r.data);
      else errors.push(...issues(r.error, `body[${i}]`));
    });
    return errors.length ? { error: errors.join('; ') } : { events, batch: true };
  }
  const r = WebmailEvent.safeParse(body ?? {});
  return r.success ? { events: [r.data], batch: false } : { error: issues(r.error, 'body').join('; ') };
}

function issues(err: z.ZodError, where: string): string[] {
  return err.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? i.keys.join(', ') : i.path.join('.');
    return `${where}${keys ? ` ${keys}` : ''}: ${i.message}`;
  });
}
