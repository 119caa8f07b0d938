import type { EntityManager } from 'typeorm';
import { SessionState, assertTransition } from '@rcflow/domain';
import { AUDIT_EVENT_COLUMNS, ActorKind, AuditEntry, StreamHead, appendAudit, chainEntries, sessionStream } from '@rcflow/audit';
import { JobItem, jobIdOf, writeOutbox } from '@rcflow/jobs';
import { queryPrepared } from './prepared';

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
  /**
   * What the caller read with the session, in the same snapshot as `expectedVersion`. With it the
   * transition is a single statement that needs no transaction around it.
   */
  known?: KnownSession;
  /**
   * Further writes that commit with the transition and only when it applies. Each is a data-modifying statement numbered from $1 that may read the updated session
   * as `s` (columns id, device_id, version), e.g. `INSERT INTO t (a) SELECT $1 FROM s`.
   */
  also?: SqlPart[];
}

export interface KnownSession {
  /** The head of the session's audit stream; its seq equals the session's version. */
  head: StreamHead;
  deviceId: string;
  viewerId: string;
  ticketRef: string | null;
}

export interface SqlPart {
  sql: string;
  params: unknown[];
  /**
   * The same write for many sessions in one statement, which lets a TransitionBatcher carry it.
   * `sql` is a data-modifying statement reading `x`: one row per applied session carrying this
   * part, with columns id, device_id, version and p1…pN (this part's params, of SQL `types`).
   */
  batched?: { sql: string; types: string[] };
}

export interface TransitionResult {
  state: SessionState;
  version: number;
  /** The session stream's new head. */
  head: StreamHead;
}

/** SQL types of AUDIT_EVENT_COLUMNS, for values that do not sit directly in an INSERT … VALUES. */
export const AUDIT_EVENT_TYPES = ['text', 'int', 'timestamptz', 'uuid', 'text', 'text', 'text', 'uuid', 'uuid', 'uuid', 'text', 'text', 'jsonb', 'text', 'text'];

/**
 * The audit entries of a transition request, one per step, for a session row with these columns.
 * Shared by applyTransitions and the batched statement so both chain exactly the same events.
 */
export function transitionEntries(
  req: Pick<TransitionRequest, 'sessionId' | 'from' | 'expectedVersion' | 'actor' | 'steps'>,
  row: { device_id: string; viewer_id: string; ticket_ref: string | null },
): AuditEntry[] {
  const stream = sessionStream(req.sessionId);
  let prev = req.from;
  return req.steps.map((step, i) => {
    const entry = {
      stream,
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
  });
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
  const params: unknown[] = [];
  const p = (v: unknown) => `$${params.push(v)}`;
  const at = p(now);
  const sets = [`state = ${p(finalState)}`, `version = version + ${p(req.steps.length)}`, `state_changed_at = ${at}`, `updated_at = ${at}`];
  for (const [key, value] of Object.entries(patch) as [keyof SessionPatch, unknown][]) sets.push(`${PATCH_COLUMNS[key]} = ${p(value)}`);
  const update = `UPDATE sessions SET ${sets.join(', ')} WHERE id = ${p(req.sessionId)} AND state = ${p(req.from)} AND version = ${p(req.expectedVersion)}`;
  const stream = sessionStream(req.sessionId);
  const entries = (row: { device_id: string; viewer_id: string; ticket_ref: string | null }) => transitionEntries(req, row);

  if (!req.known) {
    const rows = await queryPrepared<{ version: number; device_id: string; viewer_id: string; ticket_ref: string | null }>(
      manager,
      `${update} RETURNING version, device_id, viewer_id, ticket_ref`,
      params,
    );
    if (rows.length === 0) return null;
    const row = rows[0];
    const heads = await appendAudit(manager, auditKey, entries(row), now);
    if (req.enqueue?.length) await writeOutbox(manager, req.enqueue);
    for (const part of req.also ?? []) {
      const n = part.params.length + 1;
      await manager.query(`WITH s AS (SELECT id, device_id, version FROM sessions WHERE id = $${n}) ${part.sql}`, [...part.params, req.sessionId]);
    }
    return { state: finalState, version: row.version, head: heads.get(stream)! };
  }

  // One statement: the fenced update, its events, the stream head (fenced too), the outbox rows and
  // the caller's writes. Nothing but the update runs unless the update matched.
  const known = req.known;
  const chained = chainEntries(
    auditKey,
    entries({ device_id: known.deviceId, viewer_id: known.viewerId, ticket_ref: known.ticketRef }),
    new Map([[stream, known.head]]),
    now,
  );
  const head = chained.heads.get(stream)!;
  const values = chained.rows.map((r) => `(${r.map((v, i) => `${p(v)}::${AUDIT_EVENT_TYPES[i]}`).join(',')})`).join(',');
  const ctes = [
    `s AS (${update} RETURNING id, device_id, version)`,
    `e AS (INSERT INTO audit_events (${AUDIT_EVENT_COLUMNS}) SELECT v.* FROM s, (VALUES ${values}) v RETURNING 1)`,
    `h AS (UPDATE audit_stream_heads SET seq = ${p(head.seq)}, hash = ${p(head.hash)} FROM s
            WHERE stream = ${p(stream)} AND audit_stream_heads.seq = ${p(known.head.seq)} AND audit_stream_heads.hash = ${p(known.head.hash)} RETURNING 1)`,
  ];
  if (req.enqueue?.length) {
    const items = req.enqueue;
    ctes.push(
      `o AS (INSERT INTO outbox (queue, job_name, job_id, payload) SELECT u.* FROM s,
         unnest(${p(items.map((i) => i.queue))}::text[], ${p(items.map((i) => i.name))}::text[], ${p(items.map((i) => jobIdOf(i)))}::text[],
                ${p(items.map((i) => JSON.stringify(i.data)))}::jsonb[]) u)`,
    );
  }
  for (const [i, part] of (req.also ?? []).entries()) {
    const base = params.length;
    params.push(...part.params);
    ctes.push(`a${i} AS (${part.sql.replace(/\$(\d+)/g, (_, n: string) => `$${base + Number(n)}`)})`);
  }
  // A head that does not match what was read means the chain and the session disagree: abort all of it.
  const rows = await queryPrepared<{ version: number }>(
    manager,
    `WITH ${ctes.join(',\n')}
     SELECT s.version, CASE WHEN (SELECT count(*) FROM h) = 1 THEN 0
                            ELSE rcflow_fail('audit head of ' || ${p(stream)} || ' does not match the session version') END AS ok
       FROM s`,
    params,
  );
  if (rows.length === 0) return null;
  return { state: finalState, version: rows[0].version, head };
}
