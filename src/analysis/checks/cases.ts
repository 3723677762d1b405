// Fixture cases of the analysis checks (STYLE §6): checks/<name>/cases/cases.json lists real .eml files (or, for the
// helo and mail phases, bare session facts) with the symbols each must fire and must not fire. Used by cases.test.ts
// and registry.test.ts; nothing at run time reads it.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Check, EnvelopeFacts, PhaseInput, SessionFacts, TransferFacts } from '../check.ts';
import { buildMessageView, PARSE_LIMITS } from '../message-view.ts';

export const CHECKS_DIR = path.dirname(fileURLToPath(import.meta.url));

/** The gateway the cases run against: what config gateway.hostname and gateway.domains would say. */
export const OUR_HOSTNAME = 'mx.example.com';
export const OUR_DOMAINS: readonly string[] = ['example.com', 'example.org'];
/** The client of a case that names none: an ordinary outside MTA. */
export const DEFAULT_SESSION = { ip: '198.51.100.23', helo: 'mail.sender.example' } as const;
export const DEFAULT_ENVELOPE = { mail_from: 'news@sender.example', rcpt_to: ['alice@example.com'] } as const;
/** The clock of a case that names none, so that Date checks do not depend on when the tests run. */
export const DEFAULT_NOW = '2025-03-14T10:00:00Z';

const symbolName = z.string().regex(/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/, 'a symbol name in SCREAMING_SNAKE');

export const caseSchema = z
  .strictObject({
    /** Test name; defaults to the file name. Required when there is no file. */
    name: z.string().min(1).optional(),
    /** An .eml in the same cases/ folder, the message as the client sent it (line ends become CRLF). */
    file: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]*\.eml$/, 'a kebab-case .eml file name in this cases/ folder')
      .optional(),
    /** Why the case exists, when the name does not say it. */
    why: z.string().optional(),
    expect: z.array(symbolName).default([]),
    expect_absent: z.array(symbolName).default([]),
    envelope: z
      .strictObject({
        /** '' for the null sender. */
        mail_from: z.string(),
        rcpt_to: z.array(z.string().includes('@')).min(1),
        smtputf8: z.boolean().default(false),
        eight_bit_mime: z.boolean().default(false),
      })
      .optional(),
    session: z
      .strictObject({
        ip: z.string().refine((s) => /^[0-9a-fA-F:.]+$/.test(s), 'an IP address'),
        helo: z.string().optional(),
        trusted: z.boolean().default(false),
        tls: z.boolean().default(false),
      })
      .optional(),
    /** What the DATA reader saw on the wire (data phase only). */
    transfer: z
      .strictObject({
        bare_newlines: z.number().int().min(0).default(0),
        eight_bit_undeclared: z.boolean().default(false),
      })
      .optional(),
    /** Options of the check for this case, validated by the check's own schema. */
    options: z.record(z.string(), z.unknown()).optional(),
    /**
     * DNS for the case: a zone JSON (path from the check's folder) served by a local DNS server
     * (test/harness/dns.ts), or "silent" for a server that never answers; options.dns_servers is pointed at it.
     */
    dns: z.string().min(1).optional(),
    /** The clock, ISO 8601. */
    now: z.iso.datetime({ offset: true }).optional(),
    /** Caps of the shared MIME parse for this case (message-view.ts ParseLimits), to reach one without a huge file. */
    parse_limits: z.strictObject({ max_decoded_bytes: z.number().int().min(1).optional() }).optional(),
  })
  .refine((c) => c.file !== undefined || c.name !== undefined, { message: 'a case without a file needs a name' })
  .refine((c) => c.expect.length + c.expect_absent.length > 0, { message: 'a case must expect or rule out a symbol' });

export const manifestSchema = z.array(caseSchema).min(1);

export type Case = z.infer<typeof caseSchema>;

export interface LoadedCase extends Case {
  /** name, or the file name. */
  title: string;
  check: Check;
}

/** Whether a check's options take `dns_servers` (the checks that ask DNS get the case's DNS server). */
export function takesDns(check: Check): boolean {
  const shape = (check.options as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape !== undefined && 'dns_servers' in shape;
}

export const casesDir = (check: Check): string => path.join(CHECKS_DIR, check.name, 'cases');

/**
 * Reads and validates checks/<name>/cases/cases.json. Throws with every problem: schema errors, symbols the check
 * does not declare, files that are missing, files no case uses, and data-phase cases without a message.
 */
export function loadCases(check: Check): LoadedCase[] {
  const dir = casesDir(check);
  const file = path.join(dir, 'cases.json');
  if (!fs.existsSync(file)) throw new Error(`${path.relative(CHECKS_DIR, file)}: missing; every check has cases`);
  const parsed = manifestSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
  const where = path.relative(CHECKS_DIR, file);
  if (!parsed.success) {
    throw new Error(`${where}:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  const problems: string[] = [];
  const titles = new Set<string>();
  const used = new Set<string>();
  const cases = parsed.data.map((c, i) => {
    const title = c.name ?? (c.file as string);
    const at = `[${i}] ${title}`;
    if (titles.has(title)) problems.push(`${at}: duplicate case name`);
    titles.add(title);
    for (const s of [...c.expect, ...c.expect_absent]) {
      if (!(s in check.symbols)) problems.push(`${at}: ${s} is not a symbol of check ${check.name}`);
    }
    for (const s of c.expect) if (c.expect_absent.includes(s)) problems.push(`${at}: ${s} both expected and absent`);
    if (c.file) {
      used.add(c.file);
      if (!fs.existsSync(path.join(dir, c.file))) problems.push(`${at}: ${c.file} does not exist`);
    } else if (check.phase === 'data') problems.push(`${at}: a ${check.phase}-phase case needs a file`);
    if (c.transfer && check.phase !== 'data') problems.push(`${at}: transfer facts exist only in the data phase`);
    // Keep the manifest honest about the bytes: undeclared 8-bit data needs 8-bit octets and no 8BITMIME/SMTPUTF8.
    if (c.transfer?.eight_bit_undeclared && c.file && fs.existsSync(path.join(dir, c.file))) {
      if (!fs.readFileSync(path.join(dir, c.file)).some((b) => b >= 0x80)) problems.push(`${at}: eight_bit_undeclared but the file is 7-bit`);
      if (c.envelope?.eight_bit_mime || c.envelope?.smtputf8) problems.push(`${at}: eight_bit_undeclared but the envelope declares 8-bit`);
    }
    if (c.dns && c.dns !== 'silent' && !fs.existsSync(path.join(CHECKS_DIR, check.name, c.dns))) problems.push(`${at}: dns zone ${c.dns} does not exist`);
    if (c.options) {
      if (!check.options) problems.push(`${at}: check ${check.name} has no options`);
      else {
        const r = check.options.safeParse(c.options);
        if (!r.success) problems.push(`${at}: options: ${r.error.issues.map((x) => `${x.path.join('.')} ${x.message}`).join('; ')}`);
      }
    }
    return { ...c, title, check };
  });
  for (const f of fs.readdirSync(dir)) {
    if (f !== 'cases.json' && !used.has(f)) problems.push(`${f}: not used by any case in cases.json`);
  }
  if (problems.length) throw new Error(`${where}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return cases;
}

/** The message as the gateway analyses it: CRLF line ends and our Received header on top (see gateway/phases/data.ts). */
export function wireMessage(fileBytes: Buffer, session: SessionFacts, now: number): Buffer {
  const crlf = Buffer.from(fileBytes.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
  const received =
    `Received: from ${session.helo ?? 'unknown'} ([${session.ip.replace(/^::ffff:/i, '')}])\r\n` +
    `\tby ${session.ourHostname} (Postern) with ESMTP id 01JP5ZQ4X0CASE000000;\r\n` +
    `\t${new Date(now).toUTCString().replace('GMT', '+0000')}\r\n`;
  return Buffer.concat([Buffer.from(received, 'latin1'), crlf]);
}

/** The phase input a case describes, with the defaults above for what it leaves out. */
export async function caseInput(c: LoadedCase): Promise<{ input: PhaseInput; now: number; dnsServers?: string[] }> {
  const now = Date.parse(c.now ?? DEFAULT_NOW);
  // Before the runner parses c.options (cases.test.ts reads them after this), so the check asks this server; the
  // checks it runs after get it through dnsServers.
  const dnsServers = c.dns ? [await caseDns(c.dns === 'silent' ? 'silent' : path.join(CHECKS_DIR, c.check.name, c.dns))] : undefined;
  if (dnsServers && takesDns(c.check)) c.options = { ...c.options, dns_servers: dnsServers };
  const s = c.session ?? { ...DEFAULT_SESSION, trusted: false, tls: false };
  const session: SessionFacts = {
    ip: s.ip,
    ourHostname: OUR_HOSTNAME,
    ourDomains: OUR_DOMAINS,
    trusted: s.trusted,
    tls: s.tls,
    helo: s.helo,
  };
  if (c.check.phase === 'connect' || c.check.phase === 'helo') return { input: { session }, now, dnsServers };
  const e = c.envelope ?? { ...DEFAULT_ENVELOPE, smtputf8: false, eight_bit_mime: false };
  const envelope: EnvelopeFacts = { mailFrom: e.mail_from, rcptTo: e.rcpt_to, smtputf8: e.smtputf8, eightBitMime: e.eight_bit_mime };
  if (c.check.phase !== 'data') return { input: { session, envelope }, now, dnsServers };
  const bytes = fs.readFileSync(path.join(casesDir(c.check), c.file as string));
  const t = c.transfer ?? { bare_newlines: 0, eight_bit_undeclared: false };
  const transfer: TransferFacts = { bareNewlines: t.bare_newlines, eightBitUndeclared: t.eight_bit_undeclared };
  const limits = { ...PARSE_LIMITS, ...(c.parse_limits?.max_decoded_bytes ? { maxDecodedBytes: c.parse_limits.max_decoded_bytes } : {}) };
  const message = await buildMessageView(wireMessage(bytes, session, now), limits);
  return { input: { session, envelope, message, transfer }, now, dnsServers };
}

const dnsServers = new Map<string, Promise<string>>();

/** One fixture DNS server per zone for the whole run (loaded only by cases that ask for DNS). */
function caseDns(zone: string): Promise<string> {
  let s = dnsServers.get(zone);
  if (!s) {
    s = import('../../../test/harness/dns.ts').then(async (m) => (await m.startFixtureDns(zone)).address);
    dnsServers.set(zone, s);
  }
  return s;
}
