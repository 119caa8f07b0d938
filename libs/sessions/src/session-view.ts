import type { AccessMode, SessionState, SessionType } from '@rcflow/domain';

/** What a session request asks for, from whichever intake channel it came. */
export interface SessionAsk {
  deviceId: string;
  /** The viewer when it is not the requester itself. */
  viewerId?: string | undefined;
  type: SessionType;
  access: AccessMode;
  reason?: string | undefined;
  ticketRef?: string | undefined;
  /** Booked ahead: the session is stored `scheduled` and starts its lifecycle at this time. */
  notBefore?: Date | undefined;
  /** The latest start of a booked session (only with notBefore). */
  notAfter?: Date | undefined;
  /** Asked by a ticket integration's delivery: where the outcomes are written back, and the ticket's API id. */
  ticket?: { integrationId: string; apiId: string } | undefined;
  /** Asked by an occurrence of a schedule: which, and the occurrence's time. */
  schedule?: { scheduleId: string; occurrenceAt: Date } | undefined;
  /** A booking's reminder to the user at the device, `remindMinutes` before notBefore (only with notBefore). */
  notice?: { remindMinutes: number; askApproval: boolean } | undefined;
}

/** A sessions row as SESSION_COLUMNS read it. */
export interface SessionRow {
  id: string;
  device_id: string;
  viewer_id: string;
  requester_id: string;
  type: string;
  access: string;
  reason: string | null;
  ticket_ref: string | null;
  state: SessionState;
  version: number;
  not_before: Date | null;
  not_after: Date | null;
  schedule_id: string | null;
  occurrence_at: Date | null;
  consent_rule: string | null;
  failure_cause: string | null;
  created_at: Date;
  state_changed_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
}

export const SESSION_COLUMNS = `s.id, s.device_id, s.viewer_id, s.requester_id, s.type, s.access, s.reason, s.ticket_ref, s.state,
  s.version, s.not_before, s.not_after, s.schedule_id, s.occurrence_at, s.consent_rule, s.failure_cause, s.created_at, s.state_changed_at, s.started_at, s.ended_at`;

/** A session as rcflow shows it to callers. */
export interface SessionView {
  id: string;
  deviceId: string;
  viewerId: string;
  requesterId: string;
  type: string;
  access: string;
  reason: string | null;
  ticketRef: string | null;
  state: SessionState;
  version: number;
  /** Booked ahead: when it starts its lifecycle, and the latest start (null: at once, no limit). */
  notBefore: string | null;
  notAfter: string | null;
  /** Asked by a schedule's occurrence: the schedule and the occurrence's time; null otherwise. */
  scheduleId: string | null;
  occurrenceAt: string | null;
  consentRule: string | null;
  failureCause: string | null;
  createdAt: string;
  stateChangedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  durationSeconds: number | null;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function sessionView(r: SessionRow): SessionView {
  return {
    id: r.id,
    deviceId: r.device_id,
    viewerId: r.viewer_id,
    requesterId: r.requester_id,
    type: r.type,
    access: r.access,
    reason: r.reason,
    ticketRef: r.ticket_ref,
    state: r.state,
    version: r.version,
    notBefore: iso(r.not_before),
    notAfter: iso(r.not_after),
    scheduleId: r.schedule_id,
    occurrenceAt: iso(r.occurrence_at),
    consentRule: r.consent_rule,
    failureCause: r.failure_cause,
    createdAt: new Date(r.created_at).toISOString(),
    stateChangedAt: new Date(r.state_changed_at).toISOString(),
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
    durationSeconds: r.started_at && r.ended_at ? Math.round((+new Date(r.ended_at) - +new Date(r.started_at)) / 1000) : null,
  };
}
