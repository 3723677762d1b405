// Business relationships: mail from people the organisation writes to, replies to what it sent, configured partners
// and steady transactional senders score lower, once the From domain is authenticated; a From domain made to look
// like one of those scores sharply higher and gets none of the reductions.
import { z } from 'zod';
import { defineCheck, type CorrespondentHistory } from '../../check.ts';
import { addressesInName, analyseAuthor, domainOf, inDomains, orgDomain } from '../headers/from.ts';
import { authenticated } from './authenticated.ts';
import { resemblance, type Resemblance, type Target } from './lookalike.ts';

const DAY_MS = 86_400_000;
/** How long a correspondent's domain has been written to before it is no longer compared with other correspondents. */
const SETTLED_MS = 30 * DAY_MS;
/** In-Reply-To and References ids looked up per message; a real thread rarely holds more. */
const MAX_THREAD_IDS = 50;

const options = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'Apply the business heuristics. Off, the check emits nothing.' }),
  partner_domains: z
    .array(
      z
        .string()
        .regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/, 'expected a domain name such as "supplier.example"')
        .transform((s) => orgDomain(s.toLowerCase())),
    )
    .default([])
    .meta({
      description:
        'Domains of partners (registrable domains, e.g. ["supplier.example"]): their authenticated mail scores PARTNER_DOMAIN, and a domain that looks like one of them LOOKALIKE_PARTNER. A partner is never taken for a look-alike of another domain.',
    }),
  max_edit_distance: z
    .number()
    .int()
    .min(0)
    .max(3)
    .default(2)
    .meta({
      description:
        'Typing edits (Damerau-Levenshtein) a sender\'s registrable label may be from a correspondent\'s or partner\'s to count as a look-alike, for labels of 9+ letters; labels of 5-8 letters allow one, shorter ones only confusable letters. 0 turns the edit rule off.',
    }),
});

/**
 * How much a history counts, 0.25 to 1: messages matter most (five make most of it), age adds the rest over 30 days.
 * One message is little evidence: a user may have answered a stranger once.
 */
export function historyWeight(h: CorrespondentHistory, now: number): number {
  const age = Math.max(0, now - h.firstSeen) / DAY_MS;
  return Math.min(1, 0.25 + 0.6 * Math.min(1, h.messages / 5) + 0.15 * Math.min(1, age / 30));
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Message-IDs named by In-Reply-To and References, without brackets. */
function threadIds(values: readonly string[]): string[] {
  const ids = new Set<string>();
  for (const v of values) {
    for (const m of v.slice(0, 20_000).matchAll(/<([^<>\s]{1,250})>/g)) {
      ids.add(m[1]);
      if (ids.size >= MAX_THREAD_IDS) return [...ids];
    }
  }
  return [...ids];
}

export const business = defineCheck({
  name: 'business',
  phase: 'data',
  // The reductions need the From domain's SPF, DKIM and DMARC results.
  after: ['auth'],
  symbols: {
    KNOWN_CORRESPONDENT: {
      score: -4,
      group: 'business',
      description: 'From an authenticated address the recipient has written to; scaled by how much and how long (weight 0.25-1)',
    },
    KNOWN_CORRESPONDENT_DOMAIN: {
      score: -1.5,
      group: 'business',
      description: 'From an authenticated domain someone in the organisation has written to (not this recipient to this address)',
    },
    REPLY_TO_SENT: {
      score: -4,
      group: 'business',
      description: 'In-Reply-To or References names a message we sent to this address (weight 0.75: to this domain), and From is authenticated',
    },
    PARTNER_DOMAIN: { score: -3, group: 'business', description: 'From an authenticated domain listed in partner_domains' },
    TRANSACTIONAL: {
      score: -1,
      group: 'business',
      description: 'Aligned DKIM pass from a domain with a clean sending history here; bulk mail must also carry List-Unsubscribe',
    },
    // Above the quarantine threshold on their own by more than the -0.7 of SPF_PASS and DMARC_PASS: the owner of a
    // look-alike domain authenticates it, and a quiet invoice from it must still be held.
    LOOKALIKE_CORRESPONDENT: {
      score: 6,
      group: 'business',
      hold: true,
      description: 'From domain looks like one the organisation writes to without being it (confusable letters, typing edits, another suffix, or that domain in the display name)',
    },
    LOOKALIKE_PARTNER: {
      score: 6,
      group: 'business',
      hold: true,
      description: 'From domain looks like a domain of partner_domains without being it (confusable letters, typing edits, another suffix, or that domain in the display name)',
    },
  },
  options,
  run({ session, envelope, message }, ctx) {
    const o = ctx.options;
    // A trusted client's mail is our own; the auth check does not judge it either.
    if (!o.enabled || !message || !envelope || session.trusted) return;
    const book = ctx.services.correspondents;
    // Nothing learned and no partners: nothing to compare with or to credit.
    if (!o.partner_domains.length && (!book || book.empty())) return;
    const author = analyseAuthor(message);
    // A From that readers and DMARC read differently is the headers and auth checks' to judge; it earns nothing here.
    if (!author.shown || author.ambiguous.length) return;
    const from = author.shown.toLowerCase();
    const fromDomain = domainOf(from);
    if (inDomains(fromDomain, session.ourDomains)) return;
    const reg = orgDomain(fromDomain);
    const partners = o.partner_domains;
    const isPartner = partners.includes(reg);
    const knownDomain = book?.domain(reg);

    if (!isPartner) {
      // A domain written to for a while is a correspondent of its own, not an impostor of a similar one (two real
      // suppliers with near names); an impostor's domain is new, even when a user has already answered it.
      const settled = knownDomain !== undefined && ctx.now() - knownDomain.firstSeen >= SETTLED_MS;
      const known = book && !settled ? book.domains() : [];
      const look = lookalike(reg, author.name, partners, known, o.max_edit_distance, settled, (d) => !settled && book?.domain(d) !== undefined);
      if (look) {
        const detail = [`${fromDomain} looks like ${look.of.domain} (${look.how}${look.how === 'edit' ? ` ${look.distance}` : ''})`];
        ctx.hit(look.of.partner ? 'LOOKALIKE_PARTNER' : 'LOOKALIKE_CORRESPONDENT', { weight: look.how === 'display-name' ? 0.75 : 1, detail });
        return;
      }
    }

    const auth = authenticated(reg, (s) => ctx.saw(s));
    if (!auth.any) return;
    const now = ctx.now();
    const via = `authenticated by ${auth.how.join('+')}`;
    if (isPartner) ctx.hit('PARTNER_DOMAIN', { detail: [reg, via] });

    if (book) {
      const internal = envelope.rcptTo.map((r) => r.toLowerCase()).filter((r) => inDomains(domainOf(r), session.ourDomains));
      let best: { rcpt: string; h: CorrespondentHistory; w: number } | undefined;
      for (const rcpt of internal) {
        const h = book.pair(rcpt, from);
        const w = h ? historyWeight(h, now) : 0;
        if (h && (!best || w > best.w)) best = { rcpt, h, w };
      }
      if (best) {
        ctx.hit('KNOWN_CORRESPONDENT', { weight: round2(best.w), detail: [`${best.rcpt} wrote to ${from} ${best.h.messages} times since ${new Date(best.h.firstSeen).toISOString().slice(0, 10)}`, via] });
      } else if (knownDomain) {
        ctx.hit('KNOWN_CORRESPONDENT_DOMAIN', {
          weight: round2(historyWeight(knownDomain, now)),
          detail: [`${knownDomain.messages} messages to ${knownDomain.addresses} addresses at ${reg}`, via],
        });
      }

      const ids = threadIds([...message.headerAll('in-reply-to'), ...message.headerAll('references')]);
      let reply: { id: string; w: number } | undefined;
      for (const id of ids) {
        const s = book.sent(id);
        if (!s) continue;
        const w = s.recipients.includes(from) ? 1 : s.recipients.some((r) => orgDomain(domainOf(r)) === reg) ? 0.75 : 0;
        if (w && (!reply || w > reply.w)) reply = { id, w };
        if (w === 1) break;
      }
      if (reply) ctx.hit('REPLY_TO_SENT', { weight: reply.w, detail: [`<${reply.id}>`, via] });
    }

    // A clean history: a steady sender here, a domain we write to, or a partner.
    if (auth.dkimAligned && (book?.steady(reg) !== undefined || knownDomain !== undefined || isPartner)) {
      const bulk = /\b(?:bulk|list)\b/i.test(message.header('precedence') ?? '') || message.header('list-id') !== undefined;
      const unsubscribe = message.header('list-unsubscribe') !== undefined;
      if (!bulk || unsubscribe) ctx.hit('TRANSACTIONAL', { detail: [`dkim ${reg}`, bulk ? 'bulk with List-Unsubscribe' : 'not bulk'] });
    }
  },
});

type Look = Omit<Resemblance, 'how'> & { how: Resemblance['how'] | 'display-name' };

/** The partner or correspondent the sender passes for: by its domain, or by a domain written in its display name. */
function lookalike(
  reg: string,
  displayName: string,
  partners: readonly string[],
  known: Iterable<string>,
  maxEdits: number,
  senderKnown: boolean,
  isKnown: (d: string) => boolean,
): Look | undefined {
  function* targets(): Generator<Target> {
    for (const p of partners) yield { domain: p, partner: true };
    for (const d of known) if (!partners.includes(d)) yield { domain: d, partner: false };
  }
  const r = resemblance(reg, targets(), maxEdits, senderKnown);
  if (r) return r;
  for (const d of addressesInName(displayName)) {
    const named = orgDomain(d);
    if (named === reg) continue;
    if (partners.includes(named)) return { of: { domain: named, partner: true }, how: 'display-name', distance: 0 };
    if (isKnown(named)) return { of: { domain: named, partner: false }, how: 'display-name', distance: 0 };
  }
  return undefined;
}
