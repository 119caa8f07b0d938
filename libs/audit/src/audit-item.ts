/** A row of `SELECT ${AUDIT_ITEM_COLUMNS} FROM audit_events`. */
export interface AuditEventRow {
  id: string | number;
  stream: string;
  seq: number;
  occurred_at: Date | string;
  actor_id: string | null;
  actor_kind: string;
  action: string;
  outcome: string;
  session_id: string | null;
  device_id: string | null;
  viewer_id: string | null;
  ticket_ref: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  hash: string;
}

/** An audit event as the API shows it (the list's items; one line of the export). */
export interface AuditItem {
  id: string;
  stream: string;
  seq: number;
  occurredAt: string;
  actor: { id: string | null; kind: string };
  action: string;
  outcome: string;
  sessionId: string | null;
  deviceId: string | null;
  viewerId: string | null;
  ticketRef: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  hash: string;
}

/** A row of audit_events (AUDIT_ITEM_COLUMNS) as the API shows it; the export's keyset pages pass their rows untyped. */
export function auditItem(row: AuditEventRow | Record<string, unknown>): AuditItem {
  const r = row as AuditEventRow;
  return {
    id: String(r.id),
    stream: r.stream,
    seq: r.seq,
    occurredAt: new Date(r.occurred_at).toISOString(),
    actor: { id: r.actor_id, kind: r.actor_kind },
    action: r.action,
    outcome: r.outcome,
    sessionId: r.session_id,
    deviceId: r.device_id,
    viewerId: r.viewer_id,
    ticketRef: r.ticket_ref,
    reason: r.reason,
    data: r.data,
    hash: r.hash,
  };
}

export const AUDIT_ITEM_COLUMNS =
  'id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id, ticket_ref, reason, data, hash';
