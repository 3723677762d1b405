// The offline scan: the gateway's analysis of one stored message (mail and data phases of the real Runner, the
// configured scores and thresholds) without SMTP, for `postern eval`, the corpus evaluation and the scan benchmark.
import type { Config } from '../config/schema.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import type { AnalysisServices, Check, PhaseInput, SymbolHit } from './check.ts';
import { CHECKS } from './checks/index.ts';
import { checkOptions } from './registry-options.ts';
import { buildMessageView, splitHeaders } from './message-view.ts';
import { Runner } from './runner.ts';
import { parseLimitsOf, type ParseLimits } from './mime-scan.ts';
import { toCrlf } from './bayes/learn.ts';
import { ScoreTable, actionForScore, total, type ThresholdAction } from './scoring.ts';

export interface OfflineResult {
  score: number;
  hits: SymbolHit[];
  action: ThresholdAction;
  /** Whether the score reaches the quarantine threshold (or a symbol forces a refusal). */
  spam: boolean;
}

export interface OfflineOptions {
  config: Config;
  /** Defaults to the built-in registry. */
  checks?: readonly Check[];
  services?: AnalysisServices;
  log?: Logger;
  now?: () => number;
}

/** A client address for messages whose Received chain names none that is routable (TEST-NET-3, RFC 5737). */
const FALLBACK_IP = '203.0.113.25';

function routable(ip: string): boolean {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return false;
  const [a, b] = p;
  return !(a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || a >= 224 || (a === 100 && b >= 64 && b <= 127));
}

/**
 * Plausible session facts for a stored message: the first Received header (from the top) that names a routable
 * client gives the client's address and HELO; the envelope sender is the Return-Path, else the From address;
 * the recipient is the first To address, else postmaster of our first domain.
 */
export function sessionFactsOf(raw: Buffer, config: Config): { ip: string; helo: string; mailFrom: string; rcptTo: string[] } {
  const { headers } = splitHeaders(raw);
  let ip = FALLBACK_IP;
  let helo = 'unknown';
  let received = 0;
  for (const h of headers) {
    if (h.name !== 'received' || received++ > 20) continue;
    const m = /^from\s+(\S{1,255})[\s\S]*?\[(\d{1,3}(?:\.\d{1,3}){3})\]/i.exec(h.value.slice(0, 1_000));
    if (m && routable(m[2])) {
      helo = m[1].replace(/[^\x21-\x7e]/g, '?');
      ip = m[2];
      break;
    }
  }
  const addr = (v: string | undefined) => (v ? (/<([^<>@\s]*@[^<>\s]*)>/.exec(v)?.[1] ?? /[^\s<>"(),;:]+@[^\s<>"(),;:]+/.exec(v)?.[0]) : undefined);
  const first = (n: string) => headers.find((h) => h.name === n)?.value;
  const returnPath = first('return-path');
  const mailFrom = returnPath !== undefined && /<\s*>/.test(returnPath) ? '' : (addr(returnPath) ?? addr(first('from')) ?? '');
  const to = addr(first('to'));
  return { ip, helo, mailFrom, rcptTo: [to ?? `postmaster@${config.gateway.domains[0] ?? 'localhost'}`] };
}

/** As the gateway analyses a message: our Received header on top (gateway/phases/data.ts) of its CRLF form. */
function wireBytes(crlf: Buffer, ip: string, helo: string, config: Config, now: number): Buffer {
  const received =
    `Received: from ${helo} ([${ip}])\r\n\tby ${config.gateway.hostname} (Postern) with ESMTP id 00000000000000000000;\r\n` +
    `\t${new Date(now).toUTCString().replace('GMT', '+0000')}\r\n`;
  return Buffer.concat([Buffer.from(received, 'latin1'), crlf]);
}

export class OfflineScanner {
  private readonly runner: Runner;
  readonly scores: ScoreTable;
  private readonly now: () => number;
  private readonly limits: Readonly<ParseLimits>;

  constructor(private readonly opts: OfflineOptions) {
    const checks = opts.checks ?? CHECKS;
    this.scores = new ScoreTable(checks, opts.config.analysis.scores);
    this.now = opts.now ?? Date.now;
    this.limits = parseLimitsOf(opts.config.analysis.parse);
    this.runner = new Runner({
      checks,
      options: checkOptions(opts.config.analysis.checks),
      scores: this.scores,
      timeoutMs: opts.config.analysis.check_timeout_ms,
      log: opts.log ?? silentLogger,
      now: this.now,
      services: opts.services,
    });
  }

  async scan(raw: Buffer): Promise<OfflineResult> {
    const { config } = this.opts;
    const crlf = toCrlf(raw);
    const facts = sessionFactsOf(crlf, config);
    const view = await buildMessageView(wireBytes(crlf, facts.ip, facts.helo, config, this.now()), this.limits);
    const input: PhaseInput = {
      session: { ip: facts.ip, ourHostname: config.gateway.hostname, ourDomains: config.gateway.domains, trusted: false, tls: true, helo: facts.helo },
      envelope: { mailFrom: facts.mailFrom, rcptTo: facts.rcptTo, smtputf8: false, eightBitMime: true },
      message: view,
      // Files on disk keep their own line ends; the wire form above is what a client would have sent.
      transfer: { bareNewlines: 0, eightBitUndeclared: false },
    };
    const [mail, data] = await Promise.all([this.runner.run('mail', input), this.runner.run('data', input)]);
    const hits = [...mail.hits, ...data.hits];
    const scored = total(hits, this.scores);
    const action = actionForScore(scored, config.analysis.actions);
    return { score: scored.score, hits, action, spam: action === 'quarantine' || action === 'reject' };
  }
}
