import { ChainedEvent, GENESIS_HASH, eventHash, sessionStream } from '@rcflow/audit';
import { PrincipalFacts, hasPermission, scopeOf } from '@rcflow/domain';
import { JobItem, JobName, QueueName, jobIdOf } from '@rcflow/jobs';
import { DomainError, Forbidden, NotFound, UnprocessableRequest } from '../common/errors';
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

/**
 * The whole of intake as one statement, atomic without an explicit transaction: the session, the
 * first event of its audit stream with the stream's head, the idempotency record and the outbox
 * row, written only when the device exists within the caller's `session.request` scope (and, on
 * behalf of another viewer, within its `session.request_on_behalf` scope, the viewer being a user
 * or service). With an Idempotency-Key, a key already recorded writes nothing (ON CONFLICT waits
 * for a concurrent request with the same key to commit first). The answer row tells whether the
 * session was created, and the facts to explain why not (see intakeRefusal).
 *
 * The event is seq 1 of the new stream `session:<id>`, chained to the genesis hash; its HMAC is
 * computed here, as appendAudit does with `newStreams`.
 */
export function intakeStatement(r: IntakeRequest): { name: string; text: string; values: unknown[] } {
  const { caller, body, viewerId, sessionId, now } = r;
  const reason = body.reason ?? null;
  const ticketRef = body.ticketRef ?? null;
  const event: ChainedEvent = {
    stream: sessionStream(sessionId),
    seq: 1,
    occurredAt: now,
    actorId: caller.id,
    actorKind: 'principal',
    action: 'session.requested',
    outcome: 'requested',
    sessionId,
    deviceId: body.deviceId,
    viewerId,
    ticketRef,
    reason,
    data: { type: body.type, access: body.access, requesterId: caller.id, version: 1 },
    prevHash: GENESIS_HASH,
  };
  const job: JobItem = { queue: QueueName.Sessions, name: JobName.AdvanceSession, data: { sessionId } };
  const onBehalf = viewerId !== caller.id;
  const values: unknown[] = [
    sessionId, // $1
    body.deviceId, // $2
    viewerId, // $3
    caller.id, // $4
    body.type, // $5
    body.access, // $6
    reason, // $7
    ticketRef, // $8
    now, // $9
    scopeOf(caller.grants, 'session.request'), // $10
    event.stream, // $11
    event.action, // $12
    event.outcome, // $13
    event.actorKind, // $14
    JSON.stringify(event.data), // $15
    event.prevHash, // $16
    eventHash(r.auditKey, event), // $17
    job.queue, // $18
    job.name, // $19
    jobIdOf(job), // $20
    JSON.stringify(job.data), // $21
  ];
  // A statement takes exactly the parameters it uses: the optional ones follow in this order.
  if (onBehalf) values.push(scopeOf(caller.grants, 'session.request_on_behalf'));
  if (r.idempotency) values.push(r.idempotency.key, r.idempotency.requestHash);
  const variant = `${onBehalf ? 'behalf' : 'self'}${r.idempotency ? '_keyed' : ''}`;
  return { name: `rcflow_intake_${variant}`, text: intakeSql(onBehalf, r.idempotency !== null), values };
}

const intakeTexts = new Map<string, string>();

function intakeSql(onBehalf: boolean, keyed: boolean): string {
  const variant = `${onBehalf}:${keyed}`;
  let text = intakeTexts.get(variant);
  if (text) return text;
  let n = 21;
  const conditions = [`($10::uuid[] IS NULL OR dev.collections && $10::uuid[])`];
  if (onBehalf) {
    const scope = `$${++n}::uuid[]`;
    conditions.push(`(${scope} IS NULL OR dev.collections && ${scope})`);
    conditions.push(`EXISTS (SELECT 1 FROM viewer WHERE viewer.kind <> 'group')`);
  }
  const accepted = keyed
    ? `INSERT INTO idempotency_keys (principal_id, key, request_hash, session_id)
           SELECT $4::uuid, $${++n}::text, $${++n}::text, $1::uuid FROM allowed
         ON CONFLICT (principal_id, key) DO NOTHING RETURNING 1`
    : `SELECT 1 FROM allowed`;
  text = `WITH dev AS (
       SELECT ARRAY(SELECT m.collection_id FROM collection_members m WHERE m.device_id = d.id) AS collections
         FROM devices d WHERE d.id = $2::uuid),
     viewer AS (SELECT p.kind FROM principals p WHERE ${onBehalf ? 'p.id = $3::uuid' : 'false'}),
     allowed AS (SELECT 1 FROM dev WHERE ${conditions.join(' AND ')}),
     accepted AS (${accepted}),
     s AS (
       INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, reason, ticket_ref, state,
           state_changed_at, version, created_at, updated_at)
         SELECT $1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::text, $6::text, $7::text, $8::text, 'requested',
           $9::timestamptz, 1, $9::timestamptz, $9::timestamptz FROM accepted
       RETURNING id),
     e AS (
       INSERT INTO audit_events (stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id,
           device_id, viewer_id, ticket_ref, reason, data, prev_hash, hash)
         SELECT $11::text, 1, $9::timestamptz, $4::uuid, $14::text, $12::text, $13::text, s.id,
           $2::uuid, $3::uuid, $8::text, $7::text, $15::jsonb, $16::text, $17::text FROM s),
     h AS (INSERT INTO audit_stream_heads (stream, seq, hash) SELECT $11::text, 1, $17::text FROM s),
     o AS (INSERT INTO outbox (queue, job_name, job_id, payload) SELECT $18::text, $19::text, $20::text, $21::jsonb FROM s)
   SELECT (SELECT count(*) FROM s)::int AS created, (SELECT collections FROM dev) AS collections,
     (SELECT kind FROM viewer) AS viewer_kind`;
  intakeTexts.set(variant, text);
  return text;
}
