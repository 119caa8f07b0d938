import type { SessionState } from '@rcflow/domain';

/** The parts of the API's answers rcctl reads (the API sends more; --json prints all of it). */

/** An audit event as GET /v1/audit and the event stream send it (the API's own type). */
export type { AuditItem } from '@rcflow/audit';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface TimelineEntry {
  seq: number;
  at: string;
  action: string;
  state: SessionState;
  actor: { id: string | null; kind: string };
  reason: string | null;
  data: Record<string, unknown> | null;
}

export interface Check {
  id: string;
  number: number;
  passed: boolean;
  detail: string;
}

export interface Decision {
  eligible: boolean;
  consentRule: string;
  checks: Check[];
  evaluatedAt: string;
}

export interface Session {
  id: string;
  deviceId: string;
  viewerId: string;
  requesterId: string;
  type: string;
  access: string;
  reason: string | null;
  ticketRef: string | null;
  state: SessionState;
  failureCause: string | null;
  createdAt: string;
  stateChangedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  durationSeconds: number | null;
}

export interface SessionDetail extends Session {
  timeline: TimelineEntry[];
  decision: Decision | null;
}

export interface Accepted {
  id: string;
  state: SessionState;
  url: string;
}

export interface WhoAmI {
  principal: { id: string; name: string; kind: string };
  groups: string[];
  grants: { role: string; collectionIds: string[] | null }[];
}

export interface Verification {
  ok: boolean;
  eventsChecked: number;
  streamsChecked: number;
  problems: { stream: string; seq: number | null; eventId: string | null; problem: string }[];
  checkpoint?: { takenAt: string | null; source: string | null; streams: number; note: string | null };
}
