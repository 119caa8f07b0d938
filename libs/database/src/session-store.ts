import type { EntityManager } from 'typeorm';
import { SessionState, assertTransition } from '@rcflow/domain';
import { ActorKind, appendAudit, sessionStream } from '@rcflow/audit';
import { JobItem, writeOutbox } from '@rcflow/jobs';
import { rowsOf } from './query-results';

/** Columns a transition may set besides state and version. */
export interface SessionPatch {
  consentRule?: string | null;
  settingsHash?: string | null;
  failureCause?: string | null;
  startedAt?: Date | null;
  endedAt?: Date | null;
  connectInfo?: { host: string; port: number } | null;
}

const PATCH_COLUMNS: Record<keyof SessionPatch, string> = {
  consentRule: 'consent_rule',
  settingsHash: 'settings_hash',
  failureCause: 'failure_cause',
  startedAt: 'started_at',
  endedAt: 'ended_at',
  connectInfo: 'connect_info',
};

export interface TransitionStep {
  to: SessionState;
  reason?: string | null;
  data?: Record<string, unknown>;
  patch?: SessionPatch;
}

export interface TransitionRequest {
  sessionId: string;
  from: SessionState;
  expectedVersion: number;
  actor: { id: string | null; kind: ActorKind };
  steps: TransitionStep[];
  /** Jobs to enqueue once this commits. */
  enqueue?: JobItem[];
}

export interface TransitionResult {
  state: SessionState;
  version: number;
}

/**
 * Applies one or more consecutive transitions and their audit events in the caller's transaction,
 * fenced by state and version: when the session has moved on (a duplicate, late or out-of-order
 * job), nothing is written and null is returned.
 */
export async function applyTransitions(
  manager: EntityManager,
  auditKey: string,
  req: TransitionRequest,
  now: Date = new Date(),
): Promise<TransitionResult | null> {
  let from = req.from;
  const patch: SessionPatch = {};
  for (const step of req.steps) {
    assertTransition(from, step.to);
    Object.assign(patch, step.patch ?? {});
    from = step.to;
  }
  const finalState = from;
  const sets = ['state = $1', 'version = version + $2', 'state_changed_at = $3', 'updated_at = $3'];
  const params: unknown[] = [finalState, req.steps.length, now];
  for (const [key, value] of Object.entries(patch) as [keyof SessionPatch, unknown][]) {
    params.push(value);
    sets.push(`${PATCH_COLUMNS[key]} = $${params.length}`);
  }
  params.push(req.sessionId, req.from, req.expectedVersion);
  const n = params.length;
  const updated: unknown = await manager.query(
      `UPDATE sessions SET ${sets.join(', ')} WHERE id = $${n - 2} AND state = $${n - 1} AND version = $${n}
       RETURNING version, device_id, viewer_id, ticket_ref`,
      params,
    );
  const rows = rowsOf<{ version: number; device_id: string; viewer_id: string; ticket_ref: string | null }>(updated);
  if (rows.length === 0) return null;
  const row = rows[0];
  let prev = req.from;
  await appendAudit(
    manager,
    auditKey,
    req.steps.map((step, i) => {
      const entry = {
        stream: sessionStream(req.sessionId),
        actorId: req.actor.id,
        actorKind: req.actor.kind,
        action: `session.${step.to}`,
        outcome: step.to,
        sessionId: req.sessionId,
        deviceId: row.device_id,
        viewerId: row.viewer_id,
        ticketRef: row.ticket_ref,
        reason: step.reason ?? null,
        data: { from: prev, to: step.to, version: req.expectedVersion + i + 1, ...(step.data ?? {}) },
      };
      prev = step.to;
      return entry;
    }),
    now,
  );
  if (req.enqueue?.length) await writeOutbox(manager, req.enqueue);
  return { state: finalState, version: row.version };
}
