// One message's analysis after DATA: the shared parse, the checks of the mail and data phases, and the similarity
// fingerprint. The same function runs on the event loop (analysis.threads = 0, or a program's own checks) and in
// the analysis threads (analysis/threads.ts), so both give the same symbols.
import type { Fingerprint } from '../similarity/fingerprint-data.ts';
import { fingerprintOf } from '../similarity/fingerprint.ts';
import type { EnvelopeFacts, PhaseInput, SessionFacts, TransferFacts } from './check.ts';
import { buildMessageView } from './message-view.ts';
import type { ParseLimits } from './mime-scan.ts';
import type { PhaseResult, Runner } from './runner.ts';

/** What the gateway knows of a message when its data has arrived. Plain data: it crosses to a thread as it is. */
export interface AnalysisRequest {
  /** The message as it will be spooled, our Received header on top. */
  raw: Buffer;
  session: SessionFacts;
  envelope: EnvelopeFacts;
  transfer: TransferFacts;
  ids: { msg_id: string; conn_id: string };
  /** Make the similarity fingerprint, with similarity.min_shingles; absent when outbreak detection is off. */
  fingerprint?: { minShingles: number };
}

export interface AnalysisResult {
  mail: PhaseResult;
  data: PhaseResult;
  fp: Fingerprint | null;
  /** Why no fingerprint could be made; the message is then simply not compared, never refused for it. */
  fpError?: string;
  messageId?: string;
  subject?: string;
}

export type Analyse = (req: AnalysisRequest) => Promise<AnalysisResult>;

export async function analyseMessage(runner: Runner, limits: Readonly<ParseLimits>, req: AnalysisRequest): Promise<AnalysisResult> {
  const view = await buildMessageView(req.raw, limits);
  const input: PhaseInput = { session: req.session, envelope: req.envelope, message: view, transfer: req.transfer };
  let fpError: string | undefined;
  // The fingerprint is made beside the checks, from the same parse.
  const fpMade = req.fingerprint
    ? fingerprintOf(view, req.fingerprint.minShingles).catch((err: Error) => {
        fpError = err.message;
        return null;
      })
    : null;
  const [mail, data, fp] = await Promise.all([runner.run('mail', input, req.ids), runner.run('data', input, req.ids), fpMade]);
  return { mail, data, fp, ...(fpError !== undefined && { fpError }), messageId: view.messageId, subject: view.subject };
}
