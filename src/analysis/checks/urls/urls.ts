// URLs and phishing: where the links of a message go, and whether they pretend to go somewhere else.
import { z } from 'zod';
import { parse as parseDomain } from 'tldts';
import { defineCheck, type EnvelopeFacts } from '../../check.ts';
import type { MessageView } from '../../message-view.ts';
import { anchorMismatches } from './anchor.ts';
import { extractUrls, type FoundUrl } from './extract.ts';
import { lookalikeOf, mixedScriptLabel, protectedDomains, type Lookalike, type ProtectedDomain } from './lookalike.ts';
import { SHORTENERS } from './shorteners.ts';
import { phishPhrases } from './wording.ts';

const DEFAULT_PROTECTED = [
  'paypal.com', 'microsoft.com', 'office.com', 'outlook.com', 'live.com', 'apple.com', 'icloud.com', 'amazon.com',
  'google.com', 'dhl.com', 'fedex.com', 'ups.com', 'netflix.com', 'docusign.com', 'linkedin.com', 'dropbox.com',
  'adobe.com', 'facebook.com', 'instagram.com', 'wellsfargo.com', 'chase.com', 'bankofamerica.com',
];

const options = z.strictObject({
  max_urls: z.number().int().min(1).max(100_000).default(500).meta({
    description: 'Most distinct URLs looked at per message; a message with more gets URL_TOO_MANY.',
  }),
  protected_domains: z.array(z.string().min(3)).default(DEFAULT_PROTECTED).meta({
    description:
      'Much-phished domains whose look-alikes are flagged (URL_LOOKALIKE_BRAND), besides gateway.domains (URL_LOOKALIKE_OWN).',
  }),
  extra_shorteners: z.array(z.string().min(3)).default([]).meta({
    description: 'Registrable domains of URL shorteners, added to the bundled list (URL_SHORTENER).',
  }),
  edit_distance_min_length: z.number().int().min(3).default(6).meta({
    description:
      'Shortest protected name (without suffix) for which a single typo counts as a look-alike (paypa.com); shorter names only by confusable letters.',
  }),
});

type Options = z.infer<typeof options>;

// Parsed option lists, per options object: the check keeps no state between messages, only what config implies.
const prepared = new WeakMap<object, { shorteners: Set<string>; byOwn: Map<string, ProtectedDomain[]> }>();

function labelOf(domain: string): string {
  return parseDomain(domain, { extractHostname: false, allowPrivateDomains: true }).domainWithoutSuffix ?? '';
}

function registrable(host: string): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  return parseDomain(h, { extractHostname: false, allowPrivateDomains: true }).domain ?? h;
}

function prepare(opts: Options, ourDomains: readonly string[]) {
  let p = prepared.get(opts);
  if (!p) {
    const shorteners = new Set([...SHORTENERS, ...opts.extra_shorteners.map((s) => s.toLowerCase())]);
    prepared.set(opts, (p = { shorteners, byOwn: new Map() }));
  }
  const key = ourDomains.join(',');
  let list = p.byOwn.get(key);
  if (!list) {
    list = protectedDomains(
      [
        ...ourDomains.map((d) => ({ domain: registrable(d), own: true })),
        ...opts.protected_domains.map((d) => ({ domain: registrable(d), own: false })),
      ],
      labelOf,
    );
    p.byOwn.set(key, list);
  }
  return { shorteners: p.shorteners, protectedList: list };
}

/** Domain of the address in a header value such as `"Name" <user@example.com>` or a Return-Path. */
function addressDomain(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const v = value.replace(/"(?:[^"\\]|\\.)*"/g, '').replace(/\([^()]*\)/g, '');
  const angle = /<([^<>]*)>/.exec(v);
  const m = /@([a-z0-9.-]+\.[a-z0-9-]+)/i.exec(angle ? angle[1] : v);
  return m ? m[1] : undefined;
}

/**
 * Registrable domains the message names as its sender's: From, Sender, Return-Path, the envelope sender, DKIM
 * signing domains and List-Unsubscribe hosts. Tracking redirects of mailing services go to these.
 */
function senderDomains(message: MessageView, envelope: EnvelopeFacts | undefined): Set<string> {
  const out = new Set<string>();
  const add = (d: string | undefined) => d && out.add(registrable(d));
  add(addressDomain(message.header('from')));
  add(addressDomain(message.header('sender')));
  add(addressDomain(message.header('return-path')));
  add(addressDomain(envelope?.mailFrom));
  for (const sig of message.headerAll('dkim-signature').slice(0, 5)) add(/(?:^|;)\s*d\s*=\s*([a-z0-9.-]+)/i.exec(sig)?.[1]);
  const unsubscribe = (message.header('list-unsubscribe') ?? '').slice(0, 2000);
  for (const m of unsubscribe.matchAll(/<(?:https?:\/\/([^/>?:]+)|mailto:[^@>]*@([^>?]+))/gi)) add(m[1] ?? m[2]);
  return out;
}

const CLICKABLE = new Set(['a', 'area', 'form', 'text']);
const WEB_SCHEMES = new Set(['http', 'https', 'ftp', 'ws', 'wss']);
const isWeb = (u: FoundUrl) => (u.scheme === 'http' || u.scheme === 'https') && u.host !== '';
const USERINFO_HOST = /^[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::.*)?$/i;

export const urls = defineCheck({
  name: 'urls',
  phase: 'data',
  options,
  // Scores follow Rspamd's where it has the same test (PHISHING 4, URL_USER_PASSWORD 2, URL_HOMOGRAPH_ATTACK 5);
  // its URL_NUMERIC_IP 1.5 is raised to 2 because on the SpamAssassin development folders a public IP link is in
  // 19% of spam and under 1% of ham. Look-alikes of protected domains score above all of these, so that one with
  // credential-harvest wording reaches the quarantine threshold (8) on its own.
  symbols: {
    URL_TOO_MANY: { score: 1, group: 'urls', description: 'More distinct URLs than max_urls; only the first max_urls were examined' },
    URL_IP_LITERAL: { score: 2, group: 'urls', description: 'A link goes to a public IP address instead of a host name' },
    URL_IP_ENCODED: {
      score: 4,
      group: 'urls',
      description: 'A link host is an IPv4 address written as one number, in hex or in octal (browsers open it; no mailer writes it)',
    },
    URL_USERINFO: { score: 2, group: 'urls', description: 'A link carries user info before "@" in its host part' },
    URL_USERINFO_HOST: {
      score: 5,
      group: 'urls',
      description: 'The user info of a link looks like a host name (http://paypal.com@evil.example/ goes to evil.example)',
    },
    URL_NONSTANDARD_PORT: { score: 0.5, group: 'urls', description: 'A web link names a port other than the default' },
    URL_SHORTENER: { score: 1, group: 'urls', description: 'A link goes through a URL shortener, which hides its target' },
    URL_ANCHOR_MISMATCH: {
      score: 4,
      group: 'urls',
      description: "A link's text shows one domain while it goes to another (tracking redirects of the sender excepted)",
    },
    URL_IDN_MIXED_SCRIPT: {
      score: 5,
      group: 'urls',
      description: 'An internationalised host name mixes scripts in one label (Latin with Cyrillic or Greek: a homograph)',
    },
    URL_LOOKALIKE_BRAND: {
      score: 6,
      group: 'urls',
      description: 'A link host looks like a protected brand domain (confusable letters or one typo) without being it',
    },
    URL_LOOKALIKE_OWN: {
      score: 7,
      group: 'urls',
      description: "A link host looks like one of the organisation's own domains without being it",
    },
    URL_PHISH_WORDING: {
      score: 3,
      group: 'urls',
      description: 'Credential-harvest wording (verify your account, password expires, …) with a link; full weight when the link leaves the sender',
    },
    // 5, so that a form posting off-site under credential-harvest wording (3) is held, as the same form in an HTML
    // attachment is (ATT_HTML_CREDENTIAL_FORM 8); on the SpamAssassin development folders it fires on no ham.
    URL_BODY_FORM: {
      score: 5,
      group: 'urls',
      description: 'The body holds a form asking for a password or several fields; full weight when it posts to another domain',
    },
  },
  async run({ message, session, envelope }, ctx) {
    if (!message) return;
    const opts = ctx.options;
    const scan = await extractUrls(message, { maxUrls: opts.max_urls });
    if (scan.truncated) ctx.hit('URL_TOO_MANY', { detail: [`>${opts.max_urls}`] });
    const { shorteners, protectedList } = prepare(opts, session.ourDomains);
    const senders = senderDomains(message, envelope);

    const ipLiteral: string[] = [];
    const ipEncoded: string[] = [];
    const userinfo: string[] = [];
    const userinfoHost: string[] = [];
    const ports: string[] = [];
    const short: string[] = [];
    const mixed: string[] = [];
    const brand: string[] = [];
    const own: string[] = [];
    const looked = new Map<string, Lookalike | undefined>();
    const suspicious = new Set<FoundUrl>();
    const push = (list: string[], v: string) => {
      if (list.length < 5 && !list.includes(v)) list.push(v.slice(0, 120));
    };
    const flag = (list: string[], v: string, u: FoundUrl) => {
      push(list, v);
      suspicious.add(u);
    };
    for (const u of scan.urls) {
      if (!u.host || !WEB_SCHEMES.has(u.scheme)) continue;
      if (u.ip === 'v4-encoded') flag(ipEncoded, u.host, u);
      else if (u.ip && !u.privateIp) flag(ipLiteral, u.host, u);
      if (u.userinfo !== undefined) {
        let info = u.userinfo;
        try {
          info = decodeURIComponent(info);
        } catch {
          // A malformed escape: judge the text as written.
        }
        if (USERINFO_HOST.test(info)) flag(userinfoHost, `${info}@${u.host}`, u);
        else push(userinfo, u.host);
      }
      if (u.port !== undefined && (u.scheme === 'http' || u.scheme === 'https')) push(ports, `${u.host}:${u.port}`);
      if (shorteners.has(u.domain) || shorteners.has(u.host)) flag(short, u.host, u);
      if (u.punycode && mixedScriptLabel(u.hostUnicode)) flag(mixed, u.hostUnicode, u);
      // One comparison per registrable domain: newsletters repeat the same few domains many times.
      let la = looked.get(u.domain);
      if (!looked.has(u.domain)) looked.set(u.domain, (la = lookalikeOf(u, protectedList, opts.edit_distance_min_length)));
      if (la) flag(la.of.own ? own : brand, `${u.hostUnicode}~${la.of.domain}`, u);
    }
    if (ipLiteral.length) ctx.hit('URL_IP_LITERAL', { detail: ipLiteral });
    if (ipEncoded.length) ctx.hit('URL_IP_ENCODED', { detail: ipEncoded });
    if (userinfoHost.length) ctx.hit('URL_USERINFO_HOST', { detail: userinfoHost });
    else if (userinfo.length) ctx.hit('URL_USERINFO', { detail: userinfo });
    if (ports.length) ctx.hit('URL_NONSTANDARD_PORT', { detail: ports });
    if (short.length) ctx.hit('URL_SHORTENER', { detail: short });
    if (mixed.length) ctx.hit('URL_IDN_MIXED_SCRIPT', { detail: mixed });
    if (brand.length) ctx.hit('URL_LOOKALIKE_BRAND', { detail: brand });
    if (own.length) ctx.hit('URL_LOOKALIKE_OWN', { detail: own });

    const protectedDomain = new Set(protectedList.map((p) => p.domain));
    const mismatches = anchorMismatches(scan.anchors, senders, (d) => protectedDomain.has(d));
    if (mismatches.length) {
      // A protected name shown over a link to the sender's own (possibly look-alike) domain is still a lie, but
      // real brands send such links through their own tracking domains; half weight then.
      const strong = mismatches.some((m) => !m.toSender);
      const detail = mismatches.slice(0, 5).map((m) => `${m.shown}->${m.goes}`);
      ctx.hit('URL_ANCHOR_MISMATCH', { weight: strong ? 1 : 0.5, detail });
    }

    const links = scan.urls.filter((u) => CLICKABLE.has(u.source) && isWeb(u));
    if (links.length) {
      const phrases = phishPhrases([message.subject ?? '', scan.text, scan.htmlText]);
      if (phrases.length) {
        const away = links.some((u) => suspicious.has(u) || !senders.has(u.domain));
        ctx.hit('URL_PHISH_WORDING', { weight: away ? 1 : 0.4, detail: phrases.slice(0, 5) });
      }
    }

    const asking = scan.forms.filter((f) => f.passwords > 0 || f.textInputs >= 3);
    if (asking.length) {
      const off = asking.find((f) => f.action && isWeb(f.action) && (f.action.ip !== undefined || !senders.has(f.action.domain)));
      ctx.hit('URL_BODY_FORM', {
        weight: off ? 1 : 0.5,
        detail: asking.slice(0, 3).map((f) => {
          const asks = f.passwords ? 'password' : `${f.textInputs} fields`;
          return `${asks} -> ${f.action?.host || 'no action'}`;
        }),
      });
    }
  },
});
