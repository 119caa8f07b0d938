import { ChainedEvent, GENESIS_HASH, eventHash, sessionStream } from '@rcflow/audit';
import { PrincipalFacts, hasPermission, scopeOf } from '@rcflow/domain';
import { JobItem, JobName, QueueName, jobIdOf } from '@rcflow/jobs';
import { DomainError, Forbidden, NotFound, UnprocessableRequest } from '@rcflow/domain';
import type { SessionRequestBody } from './sessions.schemas';

/** What intake needs to know about the device and the viewer to accept a request or say why not. */
export interface IntakeFacts {
  /** The device's collections; null when the device does not exist. */
  collections: string[] | null;
  /** The viewer's kind when it is not the caller; null when there is no such principal. */
  viewerKind: string | null;
}

/**
 * Why the caller may not make this request, or null when it may. Unknown and out-of-scope devices
 * look the same (404), so ids outside the caller's scope cannot be probed. The intake statement
 * applies the same rules in SQL; this explains a refusal.
 */
export function intakeRefusal(caller: PrincipalFacts, deviceId: string, viewerId: string, facts: IntakeFacts): DomainError | null {
  if (!hasPermission(caller.grants, 'session.request')) return new Forbidden(`${caller.name} may not request sessions`);
  const { collections } = facts;
  if (!collections || !hasPermission(caller.grants, 'session.request', collections)) return new NotFound('device', deviceId);
  if (viewerId === caller.id) return null;
  if (!hasPermission(caller.grants, 'session.request_on_behalf', collections)) {
    return new Forbidden(`${caller.name} may not request sessions on behalf of another viewer`);
  }
  if (facts.viewerKind === null) return new UnprocessableRequest(`viewer ${viewerId} is not a known principal`);
  if (facts.viewerKind === 'group') return new UnprocessableRequest('the viewer must be a user or service, not a group');
  return null;
}

/** The facts intakeRefusal needs, in one statement ($1 device, $2 viewer or null). */
export const INTAKE_FACTS_SQL = `SELECT
    (SELECT ARRAY(SELECT m.collection_id FROM collection_members m WHERE m.device_id = d.id) FROM devices d WHERE d.id = $1::uuid) AS collections,
    (SELECT p.kind FROM principals p WHERE p.id = $2::uuid) AS viewer_kind`;

export interface IntakeRequest {
  caller: PrincipalFacts;
  body: SessionRequestBody;
  viewerId: string;
  sessionId: string;
  now: Date;
  auditKey: string;
  idempotency: { key: string; requestHash: string } | null;
}

/** One request as a row of the intake statement, its audit event already chained and signed. */
export interface IntakeRow {
  id: string;
  deviceId: string;
  viewerId: string;
  requesterId: string;
  type: string;
  access: string;
  reason: string | null;
  ticketRef: string | null;
  at: Date;
  /** The caller's `session.request` scope as a uuid[] literal; null when unrestricted. */
  scope: string | null;
  onBehalf: boolean;
  /** The caller's `session.request_on_behalf` scope, as `scope`. */
  behalfScope: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  stream: string;
  data: string;
  hash: string;
  jobId: string;
  payload: string;
}

/** What the intake statement answers for a row: created or not, and the facts to explain a refusal. */
export interface IntakeOutcome extends IntakeFacts {
  /** When true, the facts are not read (null): nothing needs explaining. */
  created: boolean;
}

const INTAKE_EVENT = { actorKind: 'principal', action: 'session.requested', outcome: 'requested' } as const;
const INTAKE_JOB = { queue: QueueName.Sessions, name: JobName.AdvanceSession } as const;

const uuidArray = (ids: string[] | null) => (ids === null ? null : `{${ids.join(',')}}`);

/**
 * The row for one request. Its audit event is seq 1 of the new stream `session:<id>`, chained to
 * the genesis hash, its HMAC computed here as appendAudit does with `newStreams`.
 */
export function intakeRow(r: IntakeRequest): IntakeRow {
  const { caller, body, viewerId, sessionId, now } = r;
  const event: ChainedEvent = {
    stream: sessionStream(sessionId),
    seq: 1,
    occurredAt: now,
    actorId: caller.id,
    actorKind: INTAKE_EVENT.actorKind,
    action: INTAKE_EVENT.action,
    outcome: INTAKE_EVENT.outcome,
    sessionId,
    deviceId: body.deviceId,
    viewerId,
    ticketRef: body.ticketRef ?? null,
    reason: body.reason ?? null,
    data: { type: body.type, access: body.access, requesterId: caller.id, version: 1 },
    prevHash: GENESIS_HASH,
  };
  const job: JobItem = { queue: INTAKE_JOB.queue, name: INTAKE_JOB.name, data: { sessionId } };
  const onBehalf = viewerId !== caller.id;
  return {
    id: sessionId,
    deviceId: body.deviceId,
    viewerId,
    requesterId: caller.id,
    type: body.type,
    access: body.access,
    reason: event.reason,
    ticketRef: event.ticketRef,
    at: now,
    scope: uuidArray(scopeOf(caller.grants, 'session.request')),
    onBehalf,
    behalfScope: onBehalf ? uuidArray(scopeOf(caller.grants, 'session.request_on_behalf')) : null,
    idempotencyKey: r.idempotency?.key ?? null,
    requestHash: r.idempotency?.requestHash ?? null,
    stream: event.stream,
    data: JSON.stringify(event.data),
    hash: eventHash(r.auditKey, event),
    jobId: jobIdOf(job),
    payload: JSON.stringify(job.data),
  };
}

/** The columns of the intake statement's unnest, in order, with their types. */
const COLUMNS: [keyof IntakeRow, string][] = [
  ['id', 'uuid'],
  ['deviceId', 'uuid'],
  ['viewerId', 'uuid'],
  ['requesterId', 'uuid'],
  ['type', 'text'],
  ['access', 'text'],
  ['reason', 'text'],
  ['ticketRef', 'text'],
  ['at', 'timestamptz'],
  ['scope', 'text'],
  ['onBehalf', 'boolean'],
  ['behalfScope', 'text'],
  ['idempotencyKey', 'text'],
  ['requestHash', 'text'],
  ['stream', 'text'],
  ['data', 'text'],
  ['hash', 'text'],
  ['jobId', 'text'],
  ['payload', 'text'],
];
const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const n = COLUMNS.length;

/**
 * All of intake for one or more requests as one statement, atomic without an explicit
 * transaction. For every request allowed (its device exists within the caller's
 * `session.request` scope; on behalf of another viewer, also within its
 * `session.request_on_behalf` scope, the viewer a user or service) and not already recorded under
 * its Idempotency-Key: the session, the first event of its audit stream with the stream's head,
 * the idempotency record and the outbox row. A key already recorded writes nothing for that
 * request: ON CONFLICT waits for a concurrent holder of the key to commit first, and keys are
 * taken in one order so two statements never wait for each other. One row per request answers
 * whether it was created and, when not, the facts to explain why (intakeRefusal).
 */
export const INTAKE_SQL = `WITH r AS (
    SELECT * FROM unnest(${COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})
      AS r(${COLUMNS.map(([k]) => snake(k)).join(', ')})),
  facts AS (
    SELECT r.id,
      (SELECT ARRAY(SELECT m.collection_id FROM collection_members m WHERE m.device_id = d.id) FROM devices d
        WHERE d.id = r.device_id) AS collections,
      (SELECT p.kind FROM principals p WHERE r.on_behalf AND p.id = r.viewer_id) AS viewer_kind
    FROM r),
  allowed AS (
    SELECT r.* FROM r JOIN facts f ON f.id = r.id
     WHERE f.collections IS NOT NULL
       AND (r.scope IS NULL OR f.collections && r.scope::uuid[])
       AND (NOT r.on_behalf OR ((r.behalf_scope IS NULL OR f.collections && r.behalf_scope::uuid[])
         AND f.viewer_kind IS NOT NULL AND f.viewer_kind <> 'group'))),
  keyed AS (
    INSERT INTO idempotency_keys (principal_id, key, request_hash, session_id)
      SELECT requester_id, idempotency_key, request_hash, id FROM allowed WHERE idempotency_key IS NOT NULL
        ORDER BY requester_id, idempotency_key
    ON CONFLICT (principal_id, key) DO NOTHING RETURNING session_id),
  accepted AS (SELECT a.* FROM allowed a WHERE a.idempotency_key IS NULL OR a.id IN (SELECT session_id FROM keyed)),
  s AS (
    INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, reason, ticket_ref, state,
        state_changed_at, version, created_at, updated_at)
      SELECT id, device_id, viewer_id, requester_id, type, access, reason, ticket_ref, 'requested', at, 1, at, at FROM accepted
    RETURNING id),
  e AS (
    INSERT INTO audit_events (stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id,
        device_id, viewer_id, ticket_ref, reason, data, prev_hash, hash)
      SELECT a.stream, 1, a.at, a.requester_id, $${n + 1}::text, $${n + 2}::text, $${n + 3}::text, a.id,
        a.device_id, a.viewer_id, a.ticket_ref, a.reason, a.data::jsonb, $${n + 4}::text, a.hash FROM accepted a JOIN s ON s.id = a.id),
  h AS (INSERT INTO audit_stream_heads (stream, seq, hash) SELECT a.stream, 1, a.hash FROM accepted a JOIN s ON s.id = a.id),
  o AS (
    INSERT INTO outbox (queue, job_name, job_id, payload)
      SELECT $${n + 5}::text, $${n + 6}::text, a.job_id, a.payload::jsonb FROM accepted a JOIN s ON s.id = a.id)
  SELECT r.id, s.id IS NOT NULL AS created,
      CASE WHEN s.id IS NULL THEN f.collections END AS collections, CASE WHEN s.id IS NULL THEN f.viewer_kind END AS viewer_kind
    FROM r JOIN facts f ON f.id = r.id LEFT JOIN s ON s.id = r.id`;

/** The parameters of INTAKE_SQL for these rows. */
export function intakeParams(rows: IntakeRow[]): unknown[] {
  return [
    ...COLUMNS.map(([k]) => rows.map((row) => row[k])),
    INTAKE_EVENT.actorKind,
    INTAKE_EVENT.action,
    INTAKE_EVENT.outcome,
    GENESIS_HASH,
    INTAKE_JOB.queue,
    INTAKE_JOB.name,
  ];
}
