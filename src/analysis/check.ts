// The check framework: a check looks at one aspect of a session or message and emits named symbols; it never picks an action.
import type { z } from 'zod';
import type { Logger } from '../core/log.ts';
import type { MessageView } from './message-view.ts';
import type { BayesModel } from './bayes/classifier.ts';

export type Phase = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data';

export type SymbolGroup =
  | 'protocol'
  | 'auth'
  | 'headers'
  | 'envelope'
  | 'content'
  | 'urls'
  | 'attachments'
  | 'reputation'
  | 'similarity'
  | 'business'
  | 'policy';

export interface SymbolSpec {
  /** Default score; [analysis.scores] overrides it. */
  score: number;
  /** One line; feeds docs/symbols.md and the center. */
  description: string;
  group: SymbolGroup;
  /**
   * A hit holds the message in quarantine at least, and never by itself makes it a refusal (the score without it
   * decides that). For signs that call for a person's look rather than a verdict, such as a look-alike domain.
   */
  hold?: boolean;
}

export interface SymbolHit {
  name: string;
  check: string;
  score: number;
  weight: number;
  detail?: string[];
}

/** What every phase knows about the session. */
export interface SessionFacts {
  ip: string;
  /** Our own hostname (config gateway.hostname). */
  ourHostname: string;
  ourDomains: readonly string[];
  trusted: boolean;
  tls: boolean;
  helo?: string;
}

export interface EnvelopeFacts {
  /** '' for the null sender. */
  mailFrom: string;
  rcptTo: readonly string[];
  smtputf8: boolean;
  eightBitMime: boolean;
}

export interface PhaseInput {
  session: SessionFacts;
  envelope?: EnvelopeFacts;
  /** Present in the data phase. */
  message?: MessageView;
  /** What the DATA reader saw on the wire, present in the data phase. */
  transfer?: TransferFacts;
}

export interface TransferFacts {
  /** Bare CR or LF line ends that were turned into CRLF. */
  bareNewlines: number;
  /** 8-bit octets although the client did not declare BODY=8BITMIME. */
  eightBitUndeclared: boolean;
}

/**
 * Shared analysis services a check may read, handed to the Runner by whoever assembles it (app.ts, the offline
 * scan, a test): nothing is a module global, so tests never leak state into each other. Each is optional.
 */
export interface AnalysisServices {
  /** The statistical classifier's current model (in memory; reloaded by its owner when the store changes). */
  bayes?: { model(): BayesModel };
  /** What the organisation's outbound mail taught about its correspondents (outbound/correspondents.ts). */
  correspondents?: CorrespondentLookup;
}

/** How much mail went one way, and when. */
export interface CorrespondentHistory {
  messages: number;
  firstSeen: number;
  lastSeen: number;
}

/** Lookups on the learned correspondents; in memory, cheap enough for every message. Addresses and domains lower case. */
export interface CorrespondentLookup {
  /** Mail `internal` sent to `external`. */
  pair(internal: string, external: string): CorrespondentHistory | undefined;
  /** Mail anyone of ours sent to addresses under this registrable domain, and to how many of them. */
  domain(registrable: string): (CorrespondentHistory & { addresses: number }) | undefined;
  /** A message we sent, by Message-ID without angle brackets. */
  sent(messageId: string): { sender: string; recipients: readonly string[]; sentAt: number } | undefined;
  /** Every registrable domain we have written to. */
  domains(): Iterable<string>;
  /** Inbound history of a registrable sender domain that has sent steadily, with little of it held or refused. */
  steady(registrable: string): CorrespondentHistory | undefined;
  /** Nothing learned yet: no correspondents and no steady senders. */
  empty(): boolean;
}

export interface CheckContext<Sym extends string, Opt> {
  hit(symbol: Sym, opts?: { weight?: number; detail?: string[] }): void;
  /** A symbol a check named in `after` emitted for this message; undefined when it did not (or is not in `after`). */
  saw(symbol: string): SymbolHit | undefined;
  options: Readonly<Opt>;
  services: Readonly<AnalysisServices>;
  log: Logger;
  now(): number;
  signal: AbortSignal;
}

export interface Check {
  name: string;
  phase: Phase;
  symbols: Readonly<Record<string, SymbolSpec>>;
  options?: z.ZodType;
  /** Checks of the same phase that run first, whose symbols `ctx.saw` reads (rspamd's register_dependency). */
  after?: readonly string[];
  timeoutMs?: number;
  onError: 'ignore' | 'defer';
  run(input: PhaseInput, ctx: CheckContext<string, unknown>): void | Promise<void>;
}

export function defineCheck<const S extends Record<string, SymbolSpec>, O extends z.ZodType = z.ZodType<Record<string, never>>>(spec: {
  name: string;
  phase: Phase;
  symbols: S;
  options?: O;
  after?: readonly string[];
  timeoutMs?: number;
  onError?: 'ignore' | 'defer';
  run(input: PhaseInput, ctx: CheckContext<keyof S & string, z.infer<O>>): void | Promise<void>;
}): Check {
  return { ...spec, onError: spec.onError ?? 'ignore' } as unknown as Check;
}
