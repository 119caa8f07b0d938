import type { ConsentRule, SessionType } from './types';

/** A notice's ask for the user's agreement ahead: not_asked, pending (asked, no answer), or the answer. */
export type Approval = 'not_asked' | 'pending' | 'granted' | 'denied' | 'revoked';
export type PreapprovalDecision = 'granted' | 'denied' | 'revoked';

/** What an answer from the device needs to know of its notice. */
export interface NoticeForAnswer {
  deviceId: string;
  state: string;
  approval: Approval;
  windowEnd: Date;
}

export type AnswerVerdict =
  | { apply: true }
  /** The same answer again (a resend after a reconnection): nothing changes, nothing is refused. */
  | { apply: false; repeat: true }
  | { apply: false; repeat: false; refused: string };

/**
 * Whether the user's answer to a notice applies: only from the notice's own device; granted or
 * denied while the ask is pending, revoked while granted; none after the window ended (a revoke
 * after the window opened still counts: the session may not have started yet). A cancelled
 * notice takes no answer.
 */
export function answerVerdict(notice: NoticeForAnswer | null, deviceId: string, decision: PreapprovalDecision, now: Date): AnswerVerdict {
  if (notice?.deviceId !== deviceId) return { apply: false, repeat: false, refused: 'no such notice for this device' };
  if (notice.approval === decision) return { apply: false, repeat: true };
  if (notice.state === 'cancelled') return { apply: false, repeat: false, refused: 'the notice was cancelled' };
  if (notice.approval === 'not_asked') return { apply: false, repeat: false, refused: 'this notice did not ask for approval' };
  if (now.getTime() > notice.windowEnd.getTime()) {
    return { apply: false, repeat: false, refused: `the notice's window ended at ${notice.windowEnd.toISOString()}` };
  }
  const from: Record<PreapprovalDecision, Approval> = { granted: 'pending', denied: 'pending', revoked: 'granted' };
  if (notice.approval !== from[decision]) {
    return { apply: false, repeat: false, refused: `cannot be ${decision} when it is ${notice.approval}` };
  }
  return { apply: true };
}

/**
 * Whether a notice asks the user to agree ahead: when the booking asks for it and the device's
 * settings would prompt an attended user (prompt for permission on, or remote assistance, which
 * always asks). Otherwise the user is only reminded.
 */
export function asksApproval(askApproval: boolean, permissionRequired: boolean, type: SessionType): boolean {
  return askApproval && (permissionRequired || type === 'remote-assistance');
}

/** A granted notice as the consent step reads it. */
export interface GrantedNotice {
  id: string;
  approval: Approval;
  answeredBy: string | null;
  windowStart: Date;
  windowEnd: Date;
}

/**
 * The consent step's choice: a session that would prompt the user starts on a pre-approval when
 * one is granted (not revoked) and its window covers now; anything else (no notice, revoked,
 * outside the window, or a rule other than prompt_user) keeps the normal rules.
 */
export function preapprovalFor(rule: ConsentRule, notices: readonly GrantedNotice[], now: Date): GrantedNotice | null {
  if (rule !== 'prompt_user') return null;
  const t = now.getTime();
  return notices.find((n) => n.approval === 'granted' && n.windowStart.getTime() <= t && t <= n.windowEnd.getTime()) ?? null;
}
