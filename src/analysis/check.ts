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
}

export interface CheckContext<Sym extends string, Opt> {
  hit(symbol: Sym, opts?: { weight?: number; detail?: string[] }): void;
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
  timeoutMs?: number;
  onError: 'ignore' | 'defer';
  run(input: PhaseInput, ctx: CheckContext<string, unknown>): void | Promise<void>;
}

export function defineCheck<const S extends Record<string, SymbolSpec>, O extends z.ZodType = z.ZodType<Record<string, never>>>(spec: {
  name: string;
  phase: Phase;
  symbols: S;
  options?: O;
  timeoutMs?: number;
  onError?: 'ignore' | 'defer';
  run(input: PhaseInput, ctx: CheckContext<keyof S & string, z.infer<O>>): void | Promise<void>;
}): Check {
  return { ...spec, onError: spec.onError ?? 'ignore' } as unknown as Check;
}
