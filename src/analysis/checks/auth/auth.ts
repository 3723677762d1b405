// Sender authentication with mailauth: SPF of the client IP for the envelope sender (or HELO), DKIM signatures of the
// raw message, DMARC of the From domain with SPF/DKIM alignment, and ARC chain validation. Each hit's detail is the
// RFC 8601 result string that the relay writes into Authentication-Results (relay/headers.ts).
import { createRequire } from 'node:module';
import { z } from 'zod';
import { addressParser } from 'postal-mime';
import type { ARCResult, DKIMResult, DKIMVerifyResult, DMARCResult, SPFResult } from 'mailauth';

/**
 * mailauth is loaded on the first message that needs it, not with the registry: it takes about half a second to
 * load, which every process and every test that never checks a message would pay.
 */
let loaded: Promise<typeof import('mailauth')> | undefined;
const mailauth = () => (loaded ??= import('mailauth'));
import { defineCheck } from '../../check.ts';
import { resolverFor, type RunState } from './resolver.ts';

/** Hard ceiling of one run; the DNS budget (budget_ms, at most 8 s) ends first, so the check reports instead of timing out. */
export const AUTH_TIMEOUT_MS = 10_000;

const server = z
  .string()
  .regex(/^(?:\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?|[0-9a-fA-F:]+|\[[0-9a-fA-F:]+\]:\d{1,5})$/, 'expected an IP address, "ip:port" or "[v6]:port"');

const options = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'Check SPF, DKIM, DMARC and ARC. Off, the check emits nothing and asks no DNS.' }),
  dns_servers: z
    .array(server)
    .default([])
    .meta({ description: 'DNS servers asked for SPF, DKIM, DMARC and ARC records, e.g. ["127.0.0.1:53"]; empty uses the system resolver.' }),
  timeout_ms: z.number().int().min(50).max(5_000).default(2_000).meta({ description: 'Timeout of one DNS query.' }),
  budget_ms: z
    .number()
    .int()
    .min(100)
    .max(8_000)
    .default(5_000)
    .meta({
      description: `All DNS of one message must be answered within this; later lookups fail as temporary errors (TEMPERROR symbols). The check's own time budget is ${AUTH_TIMEOUT_MS} ms.`,
    }),
  cache_ttl_s: z
    .number()
    .int()
    .min(0)
    .max(86_400)
    .default(300)
    .meta({ description: 'Longest time a DNS answer is cached (A/AAAA no longer than their TTL; "no such name" at most 60 s).' }),
  cache_entries: z.number().int().min(0).max(1_000_000).default(10_000).meta({ description: 'Most DNS answers cached; the oldest go first.' }),
  max_dkim_signatures: z
    .number()
    .int()
    .min(1)
    .max(20)
    .default(5)
    .meta({ description: 'DKIM-Signature fields verified per message (the first ones); more are ignored, so a message cannot make Postern do unbounded DNS and hashing.' }),
  min_key_bits: z.number().int().min(512).max(4_096).default(1_024).meta({ description: 'Shortest RSA key accepted for DKIM and ARC.' }),
  arc_trusted_sealers: z
    .array(z.string().min(1).transform((s) => s.toLowerCase()))
    .default([])
    .meta({
      description:
        'Forwarders (ARC-Seal d= domains, e.g. your mailing list host) whose valid ARC chain recording dmarc=pass outweighs a DMARC failure here: the failure is reported as DMARC_ARC_TRUSTED instead of a policy symbol.',
    }),
});

type Sym =
  | 'SPF_PASS'
  | 'SPF_FAIL'
  | 'SPF_SOFTFAIL'
  | 'SPF_NEUTRAL'
  | 'SPF_NONE'
  | 'SPF_TEMPERROR'
  | 'SPF_PERMERROR'
  | 'DKIM_VALID'
  | 'DKIM_INVALID'
  | 'DKIM_NONE'
  | 'DKIM_TEMPERROR'
  | 'DMARC_PASS'
  | 'DMARC_POLICY_REJECT'
  | 'DMARC_POLICY_QUARANTINE'
  | 'DMARC_POLICY_NONE'
  | 'DMARC_NONE'
  | 'DMARC_TEMPERROR'
  | 'DMARC_FROM_AMBIGUOUS'
  | 'DMARC_ARC_TRUSTED'
  | 'ARC_VALID'
  | 'ARC_INVALID'
  | 'ARC_NONE'
  | 'ARC_TEMPERROR';

/** Result strings for Authentication-Results: one line, printable, bounded. */
function arString(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 400);
}

const SPF_SYMBOL: Record<string, Sym> = {
  pass: 'SPF_PASS',
  fail: 'SPF_FAIL',
  softfail: 'SPF_SOFTFAIL',
  neutral: 'SPF_NEUTRAL',
  none: 'SPF_NONE',
  temperror: 'SPF_TEMPERROR',
  permerror: 'SPF_PERMERROR',
};

/** Keeps only the first `max` DKIM-Signature fields (with their continuation lines) of the header block. */
function capDkimSignatures(raw: Buffer, headerBytes: number, max: number): Buffer {
  const end = headerBytes < 0 ? raw.length : headerBytes;
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const out: string[] = [];
  let seen = 0;
  let dropping = false;
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && out.length) {
      if (!dropping) out.push(line);
      continue;
    }
    dropping = /^dkim-signature\s*:/i.test(line) && ++seen > max;
    if (!dropping) out.push(line);
  }
  return Buffer.concat([Buffer.from(out.join('\r\n'), 'latin1'), raw.subarray(end)]);
}

/** The From addresses as the message parser reads them, to compare with the one DMARC evaluates. */
function parserFromAddresses(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    try {
      for (const a of addressParser(v)) {
        if (a.address) out.push(a.address.toLowerCase());
        for (const g of a.group ?? []) if (g.address) out.push(g.address.toLowerCase());
      }
    } catch {
      // An unparsable From is judged by the headers check; here it only cannot agree with DMARC.
    }
  }
  return out;
}

const domainOf = (a: string) => a.slice(a.lastIndexOf('@') + 1).toLowerCase();

// The address parser mailauth itself reads From with (its own nodemailer), so that DMARC sees the same domain
// whether or not mailauth parsed the message.
const mailauthAddressParser = createRequire(createRequire(import.meta.url).resolve('mailauth'))('nodemailer/lib/addressparser') as (
  v: string,
) => { address?: string }[];

type DkimOutcome = Pick<DKIMVerifyResult, 'headerFrom' | 'results' | 'arc'>;

/**
 * mailauth's DKIM pass over a message that carries no DKIM or ARC field: nothing to verify, so the message is not
 * streamed through its parser (which walks the header block byte by byte); only the From addresses are read.
 */
function unsigned(fromValues: readonly string[]): DkimOutcome {
  const headerFrom: string[] = [];
  for (const v of fromValues) {
    try {
      for (const a of mailauthAddressParser(v)) if (a?.address) headerFrom.push(a.address);
    } catch {
      // as mailauth: an unparsable From contributes no address
    }
  }
  const none = { status: { result: 'none', comment: 'message not signed' }, info: 'dkim=none (message not signed)' } as unknown as DKIMResult;
  return { headerFrom, results: [none], arc: { chain: false } as unknown as DKIMVerifyResult['arc'] };
}

export const auth = defineCheck({
  name: 'auth',
  phase: 'data',
  timeoutMs: AUTH_TIMEOUT_MS,
  symbols: {
    SPF_PASS: { score: -0.2, group: 'auth', description: 'SPF: the client IP is authorised for the envelope sender (or HELO) domain' },
    SPF_FAIL: { score: 1.5, group: 'auth', description: 'SPF: the sender domain says the client IP must not send its mail (-all)' },
    SPF_SOFTFAIL: { score: 0.7, group: 'auth', description: 'SPF: the sender domain says the client IP is probably not its own (~all)' },
    SPF_NEUTRAL: { score: 0, group: 'auth', description: 'SPF: the sender domain makes no statement about the client IP (?all)' },
    SPF_NONE: { score: 0, group: 'auth', description: 'SPF: the sender domain publishes no SPF record' },
    SPF_TEMPERROR: { score: 0.1, group: 'auth', description: 'SPF: a DNS lookup failed or timed out; not evaluated' },
    SPF_PERMERROR: { score: 0.3, group: 'auth', description: 'SPF: the sender domain\'s SPF record is broken (syntax, too many lookups)' },
    DKIM_VALID: { score: -0.2, group: 'auth', description: 'DKIM: at least one signature verifies' },
    DKIM_INVALID: {
      score: 1,
      group: 'auth',
      description: 'DKIM: a signature does not verify (body or headers changed, bad or missing key, expired)',
    },
    DKIM_NONE: { score: 0, group: 'auth', description: 'DKIM: the message is not signed' },
    DKIM_TEMPERROR: { score: 0.1, group: 'auth', description: 'DKIM: a key lookup failed or timed out; not evaluated' },
    DMARC_PASS: { score: -0.5, group: 'auth', description: 'DMARC: the From domain is authenticated by aligned SPF or DKIM' },
    DMARC_POLICY_REJECT: {
      score: 8,
      group: 'auth',
      description: 'DMARC fails and the From domain asks receivers to reject (p=reject): a forged sender, or a forward that broke it',
    },
    DMARC_POLICY_QUARANTINE: {
      score: 4,
      group: 'auth',
      description: 'DMARC fails and the From domain asks receivers to treat it as suspicious (p=quarantine)',
    },
    DMARC_POLICY_NONE: { score: 0.1, group: 'auth', description: 'DMARC fails; the From domain only monitors (p=none)' },
    DMARC_NONE: { score: 0, group: 'auth', description: 'DMARC: the From domain publishes no DMARC record' },
    DMARC_TEMPERROR: { score: 0.1, group: 'auth', description: 'DMARC: the record lookup failed or timed out; not evaluated' },
    DMARC_FROM_AMBIGUOUS: {
      // Low: the ambiguity itself is the headers check's HDR_FROM_AMBIGUOUS; this one adds the policy of each shown domain.
      score: 1,
      group: 'auth',
      description: 'From has no or several addresses, an address in its local part, or reads two ways; each domain shown is judged instead',
    },
    DMARC_ARC_TRUSTED: {
      score: 0,
      group: 'auth',
      description: 'DMARC fails here, but a trusted forwarder (arc_trusted_sealers) sealed a valid ARC chain recording a pass',
    },
    ARC_VALID: { score: -0.5, group: 'auth', description: 'ARC: the chain of forwarders\' seals verifies' },
    ARC_INVALID: { score: 1, group: 'auth', description: 'ARC: the chain is broken (a seal or message signature does not verify)' },
    ARC_NONE: { score: 0, group: 'auth', description: 'ARC: the message carries no ARC chain' },
    ARC_TEMPERROR: { score: 0.1, group: 'auth', description: 'ARC: a seal key lookup failed or timed out; not evaluated' },
  },
  options,
  async run({ session, envelope, message }, ctx) {
    const o = ctx.options;
    // A trusted client (our own relays, listed in gateway.trusted_networks) is not checked: its mail is ours.
    if (!o.enabled || !message || session.trusted) return;
    const state: RunState = { tempFailed: new Set() };
    const resolver = resolverFor({ servers: o.dns_servers, timeoutMs: o.timeout_ms, cacheTtlS: o.cache_ttl_s, cacheEntries: o.cache_entries }).forRun(
      Date.now() + o.budget_ms,
      () => ctx.signal,
      state,
    );
    const mta = session.ourHostname;
    const ip = session.ip.replace(/^::ffff:(?=\d+\.)/i, '');
    const helo = session.helo ? (/^\d+\.\d+\.\d+\.\d+$|:/.test(session.helo) ? `[${session.helo.replace(/^\[|\]$/g, '')}]` : session.helo) : `[${ip}]`;
    const sender = envelope?.mailFrom || undefined;

    const signatures = message.headerAll('dkim-signature').length;
    // A header block longer than the view keeps may hide more signatures than it counted.
    const raw = signatures > o.max_dkim_signatures || message.headersTruncated ? capDkimSignatures(message.raw, message.headerBytes, o.max_dkim_signatures) : message.raw;

    const signedOrSealed = message.headersTruncated || message.headers.some((h) => h.name === 'dkim-signature' || h.name.startsWith('arc-'));
    const { arc, dkimVerify, dmarc, spf } = await mailauth();
    const [dkimOut, spfR] = await Promise.all([
      signedOrSealed
        ? (dkimVerify(raw, { resolver, sender: sender ?? '', minBitLength: o.min_key_bits, curTime: new Date(ctx.now()) }).catch(() => undefined) as Promise<
            DkimOutcome | undefined
          >)
        : unsigned(message.headerAll('from')),
      spf({ ip, helo, sender, mta, resolver }).catch(() => undefined) as Promise<SPFResult | undefined>,
    ]);

    // SPF
    if (spfR) {
      const sym = SPF_SYMBOL[spfR.status.result] ?? 'SPF_PERMERROR';
      ctx.hit(sym, { detail: [arString(spfR.info)] });
    } else ctx.hit('SPF_TEMPERROR', { detail: ['spf=temperror (evaluation failed)'] });

    // DKIM. A message mailauth cannot read is still judged by DMARC, on the From addresses alone.
    const dkimR = dkimOut ?? { ...unsigned(message.headerAll('from')), results: [] };
    if (!dkimOut) {
      ctx.hit('DKIM_INVALID', { detail: ['dkim=permerror (message could not be processed)'] });
    } else {
      const by: Partial<Record<Sym, string[]>> = {};
      for (const r of dkimR.results) {
        const res = r.status.result;
        let info = r.info;
        let sym: Sym;
        if (res === 'pass') sym = 'DKIM_VALID';
        else if (res === 'none') sym = 'DKIM_NONE';
        else if (res === 'temperror' || res === 'temperr') sym = 'DKIM_TEMPERROR';
        else {
          sym = 'DKIM_INVALID';
          // A body that does not match its hash is a failed signature (RFC 6376 6.1.3), not an unprocessable one.
          if (r.status.comment === 'body hash did not verify') info = info.replace(/^dkim=neutral/, 'dkim=fail');
        }
        (by[sym] ??= []).push(arString(info));
      }
      if (signatures > o.max_dkim_signatures) (by.DKIM_INVALID ??= []).push(`dkim=policy (${signatures - o.max_dkim_signatures} signatures beyond ${o.max_dkim_signatures} not verified)`);
      for (const [sym, detail] of Object.entries(by) as [Sym, string[]][]) ctx.hit(sym, { detail });
    }

    // ARC and DMARC need each other only for a comment; they run together.
    const from = dkimR.headerFrom.map((a) => a.toLowerCase());
    const shown = parserFromAddresses(message.headerAll('from'));
    // DMARC protects the domain a reader sees only when there is exactly one From address, read the same way by the
    // message parser and by DMARC, and DMARC's domain (after the first @) is the address's real one (after the last).
    // No From at all is the headers check's HDR_FROM_MISSING; there is no author for DMARC to protect.
    const noAuthor = from.length === 0 && shown.length === 0;
    let ambiguous: string | undefined;
    if (noAuthor) ambiguous = undefined;
    else if (from.length !== shown.length) ambiguous = 'From read two ways';
    else if (from.length !== 1) ambiguous = `${from.length} From addresses`;
    else if (from[0].indexOf('@') !== from[0].lastIndexOf('@')) ambiguous = 'From local part holds an address';
    else if (domainOf(shown[0]) !== domainOf(from[0])) ambiguous = 'From read two ways';
    // An ambiguous From is judged for each domain the message parser shows (at most two), so that hiding the
    // address from DMARC does not also hide the domain owner's policy.
    // A local part holding an address ("alerts@bank.example"@attacker.test) shows a reader that address's domain too.
    const shownDomains = (a: string) => [domainOf(a), ...(a.indexOf('@') !== a.lastIndexOf('@') ? [a.slice(a.indexOf('@') + 1).split('@')[0].replace(/["\s]/g, '')] : [])];
    const judged = ambiguous
      ? [...new Set(shown.filter((a) => a.includes('@')).flatMap(shownDomains))]
          .filter((d) => d.includes('.'))
          .slice(0, 2)
          .map((d) => `postmaster@${d}`)
      : noAuthor
        ? []
        : from;
    const judge = (headerFrom: string) =>
      dmarc({
        headerFrom,
        spfDomains: spfR && spfR.status.result === 'pass' ? [spfR.domain] : [],
        dkimDomains: (dkimR.results as DKIMResult[])
          .filter((r) => r.status.result === 'pass')
          .map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned, underSized: r.status.underSized })),
        resolver,
      }).catch(() => undefined) as Promise<DMARCResult | false | undefined>;
    const [arcR, ...dmarcRs] = await Promise.all([
      arc(dkimR.arc as never, { resolver, minBitLength: o.min_key_bits }).catch(() => undefined) as Promise<ARCResult | undefined>,
      ...judged.map(judge),
    ]);

    if (arcR) arcSymbol(arcR, dkimR, state, ctx.hit);
    else ctx.hit('ARC_INVALID', { detail: ['arc=fail (chain could not be processed)'] });

    if (noAuthor) return;
    if (ambiguous) {
      ctx.hit('DMARC_FROM_AMBIGUOUS', { detail: [arString(`dmarc=permerror (${ambiguous})${from.length === 1 ? ` header.from=${domainOf(from[0])}` : ''}`)] });
      // Only what counts against the message: a pass for one of two domains proves nothing about the other.
      const worst = dmarcRs
        .map((r) => (r ? dmarcSymbol(r) : undefined))
        .filter((x): x is { sym: Sym; info: string } => x !== undefined && DMARC_FAILS.includes(x.sym))
        .sort((a, b) => DMARC_FAILS.indexOf(a.sym) - DMARC_FAILS.indexOf(b.sym))[0];
      if (worst) ctx.hit(worst.sym, { detail: [worst.info] });
      return;
    }
    const r = dmarcRs[0];
    if (!r) return ctx.hit('DMARC_TEMPERROR', { detail: ['dmarc=temperror (evaluation failed)'] });
    const { sym, info } = dmarcSymbol(r);
    const sealer = DMARC_FAILS.includes(sym) && arcR ? trustedSealer(arcR, dkimR, o.arc_trusted_sealers) : undefined;
    // RFC 7489 7.2 lets a receiver override the policy for a local reason; the override is recorded, not hidden.
    if (sealer) ctx.hit('DMARC_ARC_TRUSTED', { detail: [info.replace(/^(dmarc=fail)( \(([^)]*)\))?/, (_m, f: string, _c, c?: string) => `${f} (${c ? `${c}, ` : ''}overridden by trusted ARC sealer ${sealer})`)] });
    else ctx.hit(sym, { detail: [info] });
  },
});

const DMARC_FAILS: readonly Sym[] = ['DMARC_POLICY_REJECT', 'DMARC_POLICY_QUARANTINE', 'DMARC_POLICY_NONE'];

function dmarcSymbol(r: DMARCResult): { sym: Sym; info: string } {
  const res = r.status.result;
  const info = arString(r.info);
  if (res === 'pass') return { sym: 'DMARC_PASS', info };
  if (res === 'none') return { sym: 'DMARC_NONE', info };
  if (res === 'temperror' || res === 'temperr') return { sym: 'DMARC_TEMPERROR', info };
  const policy = (r.policy ?? '').toLowerCase();
  return { sym: policy === 'reject' ? 'DMARC_POLICY_REJECT' : policy === 'quarantine' ? 'DMARC_POLICY_QUARANTINE' : 'DMARC_POLICY_NONE', info };
}

/** The sealer of a valid chain whose last hop saw DMARC pass, when it is one the admin trusts. */
function trustedSealer(r: ARCResult, dkimR: DkimOutcome, trusted: readonly string[]): string | undefined {
  if (!trusted.length || r.status.result !== 'pass') return undefined;
  const seal = (dkimR.arc as { lastEntry?: { 'arc-seal'?: { parsed?: { d?: { value?: unknown } } } } } | undefined)?.lastEntry?.['arc-seal'];
  const d = String(seal?.parsed?.d?.value ?? '').toLowerCase();
  const recorded = (r.authenticationResults as { dmarc?: { result?: unknown } } | undefined)?.dmarc?.result;
  return d && trusted.includes(d) && String(recorded).toLowerCase() === 'pass' ? d : undefined;
}

function arcSymbol(r: ARCResult, dkimR: DkimOutcome, state: RunState, hit: (s: Sym, o?: { detail?: string[] }) => void): void {
  const res = r.status.result;
  if (res === 'none') return hit('ARC_NONE', { detail: ['arc=none'] });
  if (res === 'pass') return hit('ARC_VALID', { detail: [arString(r.info ?? 'arc=pass')] });
  // mailauth reports every ARC failure as permanent; one that comes from a key lookup that failed is not.
  type Sig = { parsed?: { s?: { value?: unknown }; d?: { value?: unknown } } };
  const last = (dkimR.arc as { lastEntry?: Record<string, Sig | undefined> } | undefined)?.lastEntry;
  for (const h of ['arc-seal', 'arc-message-signature']) {
    const p = last?.[h]?.parsed;
    if (!p) continue;
    const keyName = `${String(p.s?.value)}._domainkey.${String(p.d?.value)}`.toLowerCase();
    if (state.tempFailed.has(`${keyName} TXT`)) return hit('ARC_TEMPERROR', { detail: [`arc=temperror (key lookup for ${arString(keyName)} failed)`] });
  }
  hit('ARC_INVALID', { detail: [arString(r.info ?? 'arc=fail')] });
}
