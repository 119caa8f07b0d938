import type { ActorKind, StreamHead } from '@rcflow/audit';
import type { ConsentRule, CheckResult, SessionState } from '@rcflow/domain';
import type { JobItem } from '@rcflow/jobs';

/** Columns a transition may set besides state and version. */
export interface SessionPatch {
  consentRule?: ConsentRule | null;
  settingsHash?: string | null;
  failureCause?: string | null;
  startedAt?: Date | null;
  endedAt?: Date | null;
  connectInfo?: { host: string; port: number } | null;
}

/** One move of the lifecycle; each step is one audit event. */
export interface TransitionStep {
  to: SessionState;
  reason?: string | null;
  data?: Record<string, unknown>;
  patch?: SessionPatch;
}

/**
 * What commits with a transition, and only when it applies. Typed values: the transition owner
 * renders each kind to SQL in one place, for every caller.
 */
export type TransitionEffect =
  /** The eligibility decision, with every check and the facts it was made from. */
  | { kind: 'decision'; eligible: boolean; consentRule: ConsentRule | null; checks: readonly CheckResult[]; facts: Record<string, unknown> }
  /** The device's agent reported running these settings. */
  | { kind: 'appliedSettings'; hash: string }
  /** A job to enqueue once the transition commits (through the outbox). */
  | { kind: 'enqueue'; job: JobItem };

/** A session as a transition starts from it: read in one snapshot with its audit stream's head. */
export interface SessionSnapshot {
  id: string;
  state: SessionState;
  version: number;
  deviceId: string;
  viewerId: string;
  ticketRef: string | null;
  /** The head of the session's audit stream (its seq equals version); null when it has none yet. */
  head: StreamHead | null;
}

export interface TransitionRequest {
  /** The session as read: the transition applies only while it is still in this state and version. */
  session: SessionSnapshot;
  actor: { id: string | null; kind: ActorKind };
  steps: TransitionStep[];
  effects?: TransitionEffect[];
}

export interface TransitionResult {
  state: SessionState;
  version: number;
  /** The session stream's new head. */
  head: StreamHead;
  /** When it applied: the session's state_changed_at and its events' occurred_at. */
  at: Date;
  /**
   * For the metrics: entering active, seconds since the request (or its booked start); entering
   * ended or interrupted, seconds the session was active; otherwise null.
   */
  elapsedSeconds: number | null;
}
