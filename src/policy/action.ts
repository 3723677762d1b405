// The closed set of actions and the one function that merges them. There is deliberately no "discard":
// nothing is silently dropped; mail is refused (the sender knows), held, or delivered.
import type { SmtpReply } from '../core/reply.ts';

export type Action =
  | { kind: 'accept' }
  | { kind: 'tag'; subjectPrefix?: string }
  | { kind: 'quarantine'; folder: 'spam' | 'malware' | 'policy' }
  | { kind: 'redirect'; to: string }
  | { kind: 'defer'; reply: SmtpReply<4> }
  | { kind: 'reject'; reply: SmtpReply<5> };

export type ActionKind = Action['kind'];

/** Strength order: reject > defer > quarantine > redirect > tag > accept. */
export const STRENGTH: Record<ActionKind, number> = {
  accept: 0,
  tag: 1,
  redirect: 2,
  quarantine: 3,
  defer: 4,
  reject: 5,
};

export const stronger = (a: Action, b: Action): Action => (STRENGTH[b.kind] > STRENGTH[a.kind] ? b : a);

/** Why an action changed; every one is kept so a decision can be explained. */
export interface Reason {
  source: 'threshold' | 'rule' | 'policy' | 'mixed-recipients' | 'check';
  action: ActionKind;
  detail: string;
  policy_id?: string;
}

export interface AppliedPolicy {
  id: string;
  target_kind: string;
  target: string;
  action: string;
  reason: string;
}
