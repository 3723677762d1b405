// Envelope sender rules: null sender use, our own domains claimed from outside, unroutable sender domains.
import net from 'node:net';
import { defineCheck } from '../../check.ts';

export const sender = defineCheck({
  name: 'sender',
  phase: 'data',
  symbols: {
    SENDER_NULL: { score: 0, group: 'envelope', description: 'Null reverse path <> (a bounce or notification)' },
    SENDER_NULL_MULTI_RCPT: {
      score: 3,
      group: 'envelope',
      description: 'Null reverse path with more than one recipient; a real bounce has exactly one',
    },
    SENDER_OWN_DOMAIN: {
      score: 2,
      group: 'envelope',
      description: 'Envelope sender in one of our own domains, from an untrusted client',
    },
    SENDER_DOMAIN_NOT_FQDN: { score: 1.5, group: 'envelope', description: 'Sender domain has no dot' },
    SENDER_IP_LITERAL: { score: 1, group: 'envelope', description: 'Sender domain is an address literal' },
  },
  run({ session, envelope }, ctx) {
    if (!envelope) return;
    const from = envelope.mailFrom;
    if (from === '') {
      ctx.hit('SENDER_NULL');
      if (envelope.rcptTo.length > 1) ctx.hit('SENDER_NULL_MULTI_RCPT', { detail: [String(envelope.rcptTo.length)] });
      return;
    }
    const at = from.lastIndexOf('@');
    if (at < 0) return;
    const domain = from.slice(at + 1).toLowerCase();
    if (/^\[.*\]$/.test(domain) || net.isIP(domain)) return ctx.hit('SENDER_IP_LITERAL', { detail: [domain] });
    if (!domain.includes('.')) ctx.hit('SENDER_DOMAIN_NOT_FQDN', { detail: [domain] });
    if (!session.trusted && session.ourDomains.includes(domain)) ctx.hit('SENDER_OWN_DOMAIN', { detail: [domain] });
  },
});
