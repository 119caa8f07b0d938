// Hot path: raw SQL. All of intake is one statement shared by concurrent requests (BENCHMARKS.md:
// intake went from 954 to ~1,950 requests/s on one API process with it).
import { AuditEntry, ChainedRows, ParamRef, auditAppendSql, chainEntries, sessionStream } from '@rcflow/audit';
import { deviceInScopeExprSql } from '@rcflow/database';
import { DomainError, Forbidden, NotFound, PrincipalFacts, UnprocessableRequest, hasPermission, scopeOf } from '@rcflow/domain';
import { JobName, OutboxRow, QueueName, outboxInsertSql } from '@rcflow/jobs';
import type { SessionAsk } from '../session-view';

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
 * applies the same rules in SQL (deviceInScopeExprSql); this explains a refusal.
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
  ask: SessionAsk;
  viewerId: string;
  sessionId: string;
  now: Date;
  auditKey: string;
  idempotency: { key: string; requestHash: string } | null;
}

/** One request as a row of the intake statement, its first audit event already chained and signed. */
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
  notBefore: Date | null;
  notAfter: Date | null;
  ticketIntegrationId: string | null;
  ticketApiId: string | null;
  scheduleId: string | null;
  occurrenceAt: Date | null;
  remindMinutes: number | null;
  askApproval: boolean;
  /** The caller's `session.request` scope as a uuid[] literal; null when unrestricted. */
  scope: string | null;
  onBehalf: boolean;
  /** The caller's `session.request_on_behalf` scope, as `scope`. */
  behalfScope: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  /** The event `session.requested`, seq 1 of the new stream `session:<id>`. */
  event: ChainedRows;
}

/** What the intake statement answers for a row: created or not, and the facts to explain a refusal. */
export interface IntakeOutcome extends IntakeFacts {
  /** When true, the facts are not read (null): nothing needs explaining. */
  created: boolean;
}

const uuidArray = (ids: string[] | null) => (ids === null ? null : `{${ids.join(',')}}`);

/** The row for one request, its audit event chained to the genesis of the session's new stream. */
export function intakeRow(r: IntakeRequest): IntakeRow {
  const { caller, ask, viewerId, sessionId, now } = r;
  const notBefore = ask.notBefore ?? null;
  const notAfter = notBefore ? (ask.notAfter ?? null) : null;
  // A session booked ahead starts `scheduled`: its first event says so, with its window.
  const first = notBefore ? 'scheduled' : 'requested';
  const entry: AuditEntry = {
    stream: sessionStream(sessionId),
    actorId: caller.id,
    actorKind: 'principal',
    action: `session.${first}`,
    outcome: first,
    sessionId,
    deviceId: ask.deviceId,
    viewerId,
    ticketRef: ask.ticketRef ?? null,
    reason: ask.reason ?? null,
    data: {
      type: ask.type,
      access: ask.access,
      requesterId: caller.id,
      version: 1,
      ...(notBefore && { notBefore: notBefore.toISOString(), notAfter: notAfter?.toISOString() ?? null }),
      ...(ask.schedule && { scheduleId: ask.schedule.scheduleId, occurrenceAt: ask.schedule.occurrenceAt.toISOString() }),
      ...(notBefore && ask.notice && { remindMinutes: ask.notice.remindMinutes, askApproval: ask.notice.askApproval }),
    },
  };
  const onBehalf = viewerId !== caller.id;
  return {
    id: sessionId,
    deviceId: ask.deviceId,
    viewerId,
    requesterId: caller.id,
    type: ask.type,
    access: ask.access,
    reason: entry.reason ?? null,
    ticketRef: entry.ticketRef ?? null,
    at: now,
    notBefore,
    notAfter,
    ticketIntegrationId: ask.ticket?.integrationId ?? null,
    ticketApiId: ask.ticket?.apiId ?? null,
    scheduleId: ask.schedule?.scheduleId ?? null,
    occurrenceAt: ask.schedule?.occurrenceAt ?? null,
    remindMinutes: notBefore ? (ask.notice?.remindMinutes ?? null) : null,
    askApproval: notBefore !== null && (ask.notice?.askApproval ?? false),
    scope: uuidArray(scopeOf(caller.grants, 'session.request')),
    onBehalf,
    behalfScope: onBehalf ? uuidArray(scopeOf(caller.grants, 'session.request_on_behalf')) : null,
    idempotencyKey: r.idempotency?.key ?? null,
    requestHash: r.idempotency?.requestHash ?? null,
    event: chainEntries(r.auditKey, [entry], new Map(), now),
  };
}

/** A booking with a reminder: its notice job, due `remindMinutes` before the booked start (at once when that has passed). */
function noticeOf(row: IntakeRow): OutboxRow[] {
  if (row.notBefore === null || row.remindMinutes === null) return [];
  return [
    {
      job: { queue: QueueName.Schedules, name: JobName.SessionNotice, data: { sessionId: row.id, scheduleId: null, at: null } },
      gateId: row.id,
      runAt: new Date(row.notBefore.getTime() - row.remindMinutes * 60_000),
    },
  ];
}

/** The columns of the statement's request rows, in order, with their types. */
const COLUMNS: [Exclude<keyof IntakeRow, 'event'>, string][] = [
  ['id', 'uuid'],
  ['deviceId', 'uuid'],
  ['viewerId', 'uuid'],
  ['requesterId', 'uuid'],
  ['type', 'text'],
  ['access', 'text'],
  ['reason', 'text'],
  ['ticketRef', 'text'],
  ['at', 'timestamptz'],
  ['notBefore', 'timestamptz'],
  ['notAfter', 'timestamptz'],
  ['ticketIntegrationId', 'uuid'],
  ['ticketApiId', 'text'],
  ['scheduleId', 'uuid'],
  ['occurrenceAt', 'timestamptz'],
  ['remindMinutes', 'int4'],
  ['askApproval', 'boolean'],
  ['scope', 'text'],
  ['onBehalf', 'boolean'],
  ['behalfScope', 'text'],
  ['idempotencyKey', 'text'],
  ['requestHash', 'text'],
];
const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

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
export function intakeStatement(rows: readonly IntakeRow[]): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  const p: ParamRef = (v) => `$${params.push(v)}`;
  const requests = COLUMNS.map(([k, type]) => `${p(rows.map((row) => row[k]))}::${type}[]`).join(', ');
  const chained: ChainedRows = { rows: rows.flatMap((row) => row.event.rows), heads: new Map(rows.flatMap((row) => [...row.event.heads])) };
  const audit = auditAppendSql(p, chained, new Map(), 'au', 's');
  const outbox = outboxInsertSql(
    p,
    rows.flatMap((row) => [
      { job: { queue: QueueName.Sessions, name: JobName.AdvanceSession, data: { sessionId: row.id } }, gateId: row.id, runAt: row.notBefore },
      ...noticeOf(row),
    ]),
    's',
  );
  const text = `WITH r AS (
    SELECT * FROM unnest(${requests}) AS r(${COLUMNS.map(([k]) => snake(k)).join(', ')})),
  facts AS (
    SELECT r.id,
      (SELECT ARRAY(SELECT m.collection_id FROM collection_members m WHERE m.device_id = d.id) FROM devices d
        WHERE d.id = r.device_id) AS collections,
      (SELECT p.kind FROM principals p WHERE r.on_behalf AND p.id = r.viewer_id) AS viewer_kind
    FROM r),
  allowed AS (
    SELECT r.* FROM r JOIN facts f ON f.id = r.id
     WHERE f.collections IS NOT NULL AND ${deviceInScopeExprSql('r.device_id', 'r.scope::uuid[]')}
       AND (NOT r.on_behalf OR (${deviceInScopeExprSql('r.device_id', 'r.behalf_scope::uuid[]')}
         AND f.viewer_kind IS NOT NULL AND f.viewer_kind <> 'group'))),
  keyed AS (
    INSERT INTO idempotency_keys (principal_id, key, request_hash, session_id)
      SELECT requester_id, idempotency_key, request_hash, id FROM allowed WHERE idempotency_key IS NOT NULL
        ORDER BY requester_id, idempotency_key
    ON CONFLICT (principal_id, key) DO NOTHING RETURNING session_id),
  accepted AS (SELECT a.* FROM allowed a WHERE a.idempotency_key IS NULL OR a.id IN (SELECT session_id FROM keyed)),
  s AS (
    INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, reason, ticket_ref, state,
        state_changed_at, version, created_at, updated_at, not_before, not_after, ticket_integration_id, ticket_api_id,
        schedule_id, occurrence_at, remind_minutes, ask_approval)
      SELECT id, device_id, viewer_id, requester_id, type, access, reason, ticket_ref,
             CASE WHEN not_before IS NULL THEN 'requested' ELSE 'scheduled' END, at, 1, at, at, not_before, not_after,
             ticket_integration_id, ticket_api_id, schedule_id, occurrence_at, remind_minutes, ask_approval FROM accepted
    RETURNING id),
  ${audit.ctes.join(',\n  ')},
  o AS (${outbox})
  SELECT r.id, s.id IS NOT NULL AS created,
      CASE WHEN s.id IS NULL THEN f.collections END AS collections, CASE WHEN s.id IS NULL THEN f.viewer_kind END AS viewer_kind,
      CASE WHEN ${audit.headsMatch} THEN 0 ELSE rcflow_fail('a new session stream already had a head') END AS ok
    FROM r JOIN facts f ON f.id = r.id LEFT JOIN s ON s.id = r.id`;
  return { text, params };
}
