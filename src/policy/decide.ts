// From a message's score to each recipient's action: thresholds, then static rules, then live policies.
import type { Config } from '../config/schema.ts';
import { REPLY } from '../core/reply.ts';
import { actionForScore, type Scored } from '../analysis/scoring.ts';
import { STRENGTH, stronger, type Action, type AppliedPolicy, type Reason } from './action.ts';
import { addressMatches } from './match.ts';
import type { LivePolicy } from './live.ts';

export interface RecipientDecision {
  rcpt: string;
  action: Action;
  because: Reason[];
  score: number;
  policies: AppliedPolicy[];
}

function thresholdAction(kind: ReturnType<typeof actionForScore>, config: Config): Action {
  switch (kind) {
    case 'reject':
      return { kind: 'reject', reply: REPLY.contentRejected };
    case 'quarantine':
      return { kind: 'quarantine', folder: 'spam' };
    case 'tag':
      return { kind: 'tag', subjectPrefix: config.analysis.subject_prefix || undefined };
    default:
      return { kind: 'accept' };
  }
}

function ruleAction(kind: string, redirectTo: string | undefined, config: Config): Action | undefined {
  switch (kind) {
    case 'accept':
      return { kind: 'accept' };
    case 'tag':
      return { kind: 'tag', subjectPrefix: config.analysis.subject_prefix || undefined };
    case 'quarantine':
      return { kind: 'quarantine', folder: 'policy' };
    case 'redirect': {
      const to = redirectTo || config.policy.redirect_to;
      return to ? { kind: 'redirect', to } : undefined;
    }
    case 'defer':
      return { kind: 'defer', reply: REPLY.tryLater };
    case 'reject':
      return { kind: 'reject', reply: REPLY.policyRejected };
    default:
      return undefined;
  }
}

export function policyAction(p: LivePolicy, config: Config): Action | undefined {
  switch (p.action) {
    case 'block':
      return { kind: 'reject', reply: REPLY.policyRejected };
    case 'defer':
      return { kind: 'defer', reply: REPLY.tryLater };
    case 'quarantine':
      return { kind: 'quarantine', folder: 'policy' };
    case 'redirect':
      return ruleAction('redirect', typeof p.params.to === 'string' ? p.params.to : undefined, config);
    default:
      return undefined;
  }
}

export function decideRecipient(
  rcpt: string,
  mailFrom: string,
  scored: Scored,
  config: Config,
  live: readonly LivePolicy[],
): RecipientDecision {
  const because: Reason[] = [];
  let score = scored.score;
  let forced: Action | undefined;
  for (const r of config.policy.rules) {
    if (!addressMatches(r.recipient, rcpt) || !addressMatches(r.sender, mailFrom || '<>')) continue;
    if (r.score !== undefined) {
      score += r.score;
      because.push({ source: 'rule', action: 'accept', detail: `score ${r.score >= 0 ? '+' : ''}${r.score} (${r.recipient} / ${r.sender})` });
    }
    if (r.action) {
      const a = ruleAction(r.action, r.redirect_to, config);
      if (a) {
        forced = a;
        because.push({ source: 'rule', action: a.kind, detail: `rule ${r.recipient} / ${r.sender} → ${r.action}` });
      }
    }
  }
  const byScore = thresholdAction(actionForScore({ ...scored, score, baseScore: scored.baseScore + score - scored.score }, config.analysis.actions), config);
  if (byScore.kind !== 'accept') {
    const why = scored.forcedReject.length
      ? `forced by ${scored.forcedReject.join(', ')}`
      : scored.held.length && byScore.kind === 'quarantine'
        ? `held by ${scored.held.join(', ')} (score ${score.toFixed(2)})`
        : `score ${score.toFixed(2)}`;
    because.unshift({ source: 'threshold', action: byScore.kind, detail: why });
  }
  let action = forced ?? byScore;
  const policies: AppliedPolicy[] = [];
  const allow = live.find((p) => p.action === 'allow');
  for (const p of live) {
    const a = policyAction(p, config);
    if (!a) continue;
    if (STRENGTH[a.kind] > STRENGTH[action.kind]) {
      action = stronger(action, a);
      because.push({ source: 'policy', action: a.kind, detail: p.reason, policy_id: p.id });
      policies.push({ id: p.id, target_kind: p.target_kind, target: p.target, action: p.action, reason: p.reason });
    }
  }
  // An allow-listed source skips the score, never a refusal a symbol forces (malware, a configured "reject").
  if (allow && !forced && !scored.forcedReject.length && action.kind !== 'accept' && !policies.length) {
    because.push({ source: 'policy', action: 'accept', detail: allow.reason, policy_id: allow.id });
    policies.push({ id: allow.id, target_kind: allow.target_kind, target: allow.target, action: allow.action, reason: allow.reason });
    action = { kind: 'accept' };
  }
  return { rcpt, action, because, score, policies };
}

/**
 * One DATA reply serves every recipient. If any recipient's copy is taken (accept, tag, quarantine,
 * redirect), the reply is 250 and recipients that would be refused are held in quarantine instead,
 * with the reason recorded. Otherwise the strongest refusal is the reply.
 */
export function settle(decisions: RecipientDecision[]): { reply: 'accept' | Action; decisions: RecipientDecision[] } {
  const taken = decisions.some((d) => d.action.kind !== 'reject' && d.action.kind !== 'defer');
  if (!taken) {
    const reject = decisions.find((d) => d.action.kind === 'reject');
    return { reply: (reject ?? decisions[0]).action, decisions };
  }
  for (const d of decisions) {
    if (d.action.kind === 'reject' || d.action.kind === 'defer') {
      d.because.push({ source: 'mixed-recipients', action: 'quarantine', detail: `${d.action.kind} for this recipient, held because others accepted the message` });
      d.action = { kind: 'quarantine', folder: 'policy' };
    }
  }
  return { reply: 'accept', decisions };
}
