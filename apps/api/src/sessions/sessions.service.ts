import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { sessionStream } from '@rcflow/audit';
import { KnownSession, TransitionRequest, applyTransitions, loadEligibilityInput, queryPrepared } from '@rcflow/database';
import {
  CANCELLABLE_STATES,
  DEFAULT_ELIGIBILITY_POLICY,
  EligibilityDecision,
  PrincipalFacts,
  SessionState,
  canonicalJson,
  evaluateEligibility,
  hasPermission,
  scopeOf,
} from '@rcflow/domain';
import { JobItem, JobName, OutboxRelay, QueueName } from '@rcflow/jobs';
import { Conflict, Forbidden, NotFound } from '@rcflow/domain';
import { decodeCursor, encodeCursor } from '../common/validation';
import { IntakeBatcher } from './intake-batcher';
import { INTAKE_FACTS_SQL, INTAKE_SQL, IntakeOutcome, IntakeRow, intakeParams, intakeRefusal, intakeRow } from './session-intake';
import type { SessionRequestBody } from './sessions.schemas';

interface SessionRow {
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
  consent_rule: string | null;
  failure_cause: string | null;
  created_at: Date;
  state_changed_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
}

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
  consentRule: string | null;
  failureCause: string | null;
  createdAt: string;
  stateChangedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  durationSeconds: number | null;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

function view(r: SessionRow): SessionView {
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
    consentRule: r.consent_rule,
    failureCause: r.failure_cause,
    createdAt: iso(r.created_at)!,
    stateChangedAt: iso(r.state_changed_at)!,
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
    durationSeconds:
      r.started_at && r.ended_at ? Math.round((+new Date(r.ended_at) - +new Date(r.started_at)) / 1000) : null,
  };
}

type ScopedSessionRow = SessionRow & { collections: string[]; head_seq: number | null; head_hash: string | null };

function mayRead(caller: PrincipalFacts, s: ScopedSessionRow): boolean {
  if (s.viewer_id === caller.id || s.requester_id === caller.id) return true;
  return hasPermission(caller.grants, 'session.read', s.collections);
}

function knownOf(s: ScopedSessionRow): KnownSession {
  return { head: { seq: s.head_seq!, hash: s.head_hash! }, deviceId: s.device_id, viewerId: s.viewer_id, ticketRef: s.ticket_ref };
}

const SESSION_COLUMNS = `s.id, s.device_id, s.viewer_id, s.requester_id, s.type, s.access, s.reason, s.ticket_ref, s.state,
  s.version, s.consent_rule, s.failure_cause, s.created_at, s.state_changed_at, s.started_at, s.ended_at`;

/** Requests sent to PostgreSQL in one intake statement, at most. */
const INTAKE_MAX_BATCH = 100;

/** A session with its device's collections and, read in the same snapshot, its audit stream's head ($2: the stream). */
const SCOPED_SESSION_SQL = `SELECT ${SESSION_COLUMNS},
    ARRAY(SELECT m.collection_id FROM collection_members m WHERE m.device_id = s.device_id) AS collections,
    h.seq AS head_seq, h.hash AS head_hash
  FROM sessions s LEFT JOIN audit_stream_heads h ON h.stream = $2::text WHERE s.id = $1::uuid`;

const SESSION_BY_KEY_SQL = `SELECT k.request_hash, ${SESSION_COLUMNS}
  FROM idempotency_keys k JOIN sessions s ON s.id = k.session_id WHERE k.principal_id = $1::uuid AND k.key = $2::text`;

/** Intake, reading and cancelling of sessions, each scoped to what the caller may see. */
@Injectable()
export class SessionsService {
  private readonly intake: IntakeBatcher;

  constructor(
    private readonly dataSource: DataSource,
    private readonly relay: OutboxRelay,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    // A few statements in flight leave the rest of the pool to reads, the outbox relay and auth.
    const maxInFlight = Math.max(1, Math.floor(config.database.poolSize / 4));
    this.intake = new IntakeBatcher((rows) => this.runIntake(rows), maxInFlight, INTAKE_MAX_BATCH);
  }

  private async runIntake(rows: IntakeRow[]): Promise<Map<string, IntakeOutcome>> {
    const answers = await queryPrepared<{ id: string; created: boolean; collections: string[] | null; viewer_kind: string | null }>(
      this.dataSource.manager,
      INTAKE_SQL,
      intakeParams(rows),
    );
    return new Map(answers.map((a) => [a.id, { created: a.created, collections: a.collections, viewerKind: a.viewer_kind }]));
  }

  /**
   * Accepts a request: the session, its first audit event, the idempotency record and the outbox
   * row commit together, in one statement (shared with concurrent requests, see IntakeBatcher),
   * so a 202 holds even while Redis is down.
   */
  async create(
    caller: PrincipalFacts,
    body: SessionRequestBody,
    idempotencyKey: string | null,
  ): Promise<{ session: SessionView; replayed: boolean }> {
    const viewerId = body.viewerId ?? caller.id;
    const requestHash = idempotencyKey ? createHash('sha256').update(canonicalJson({ ...body, viewerId })).digest('hex') : null;
    const id = randomUUID();
    const now = new Date();
    const answer = await this.intake.submit(
      intakeRow({
        caller,
        body,
        viewerId,
        sessionId: id,
        now,
        auditKey: this.config.audit.hmacKey,
        idempotency: idempotencyKey && requestHash ? { key: idempotencyKey, requestHash } : null,
      }),
    );
    if (!answer.created) {
      // An earlier request with this key (perhaps a concurrent one, committed first) answers as it did.
      if (idempotencyKey && requestHash) {
        const prior = await this.priorForKey(caller.id, idempotencyKey, requestHash);
        if (prior) return { session: prior, replayed: true };
      }
      throw (
        intakeRefusal(caller, body.deviceId, viewerId, answer) ??
        new Conflict('the request raced a change to its device or Idempotency-Key; retry')
      );
    }
    this.relay.kick();
    return {
      session: view({
        id,
        device_id: body.deviceId,
        viewer_id: viewerId,
        requester_id: caller.id,
        type: body.type,
        access: body.access,
        reason: body.reason ?? null,
        ticket_ref: body.ticketRef ?? null,
        state: 'requested',
        version: 1,
        consent_rule: null,
        failure_cause: null,
        created_at: now,
        state_changed_at: now,
        started_at: null,
        ended_at: null,
      }),
      replayed: false,
    };
  }

  private async priorForKey(principalId: string, key: string, requestHash: string): Promise<SessionView | null> {
    const [row] = await queryPrepared<SessionRow & { request_hash: string }>(this.dataSource.manager, SESSION_BY_KEY_SQL, [principalId, key]);
    if (!row) return null;
    if (row.request_hash !== requestHash) {
      throw new Conflict('this Idempotency-Key was already used with a different request body');
    }
    return view(row);
  }

  /** Refusals that need no decision record: unknown or out-of-scope ids, or a request the caller may not make. */
  private async checkIntake(caller: PrincipalFacts, deviceId: string, viewerId: string): Promise<void> {
    const [facts]: { collections: string[] | null; viewer_kind: string | null }[] = await this.dataSource.query(INTAKE_FACTS_SQL, [
      deviceId,
      viewerId === caller.id ? null : viewerId,
    ]);
    const refused = intakeRefusal(caller, deviceId, viewerId, { collections: facts.collections, viewerKind: facts.viewer_kind });
    if (refused) throw refused;
  }

  /** A session with its device's collections, which every scope check on it needs, in one statement. */
  private async findRow(id: string): Promise<ScopedSessionRow | null> {
    const [row] = await queryPrepared<ScopedSessionRow>(this.dataSource.manager, SCOPED_SESSION_SQL, [id, sessionStream(id)]);
    return row ?? null;
  }

  /** A session the caller may see: in its read scope, or one it asked for or views. */
  async get(caller: PrincipalFacts, id: string): Promise<SessionView> {
    return view(await this.readable(caller, id));
  }

  private async readable(caller: PrincipalFacts, id: string): Promise<ScopedSessionRow> {
    const row = await this.findRow(id);
    if (!row || !mayRead(caller, row)) throw new NotFound('session', id);
    return row;
  }

  async timeline(id: string) {
    const rows = await this.dataSource.query(
      `SELECT seq, occurred_at, action, outcome, actor_id, actor_kind, reason, data FROM audit_events
        WHERE stream = $1 ORDER BY seq`,
      [sessionStream(id)],
    );
    return rows.map((r: Record<string, unknown>) => ({
      seq: r.seq,
      at: iso(r.occurred_at as Date),
      action: r.action,
      state: r.outcome,
      actor: { id: r.actor_id, kind: r.actor_kind },
      reason: r.reason,
      data: r.data,
    }));
  }

  async decision(id: string) {
    const [d] = await this.dataSource.query(
      `SELECT eligible, consent_rule, checks, facts, evaluated_at FROM eligibility_decisions
        WHERE session_id = $1 ORDER BY evaluated_at DESC LIMIT 1`,
      [id],
    );
    if (!d) return null;
    return { eligible: d.eligible, consentRule: d.consent_rule, checks: d.checks, facts: d.facts, evaluatedAt: iso(d.evaluated_at) };
  }

  async list(
    caller: PrincipalFacts,
    q: { state?: string; deviceId?: string; viewerId?: string; from?: string; to?: string; limit: number; cursor?: string },
  ) {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const scope = scopeOf(caller.grants, 'session.read');
    if (scope !== null) {
      where.push(
        `(s.viewer_id = ${p(caller.id)} OR s.requester_id = $${params.length} OR EXISTS (SELECT 1 FROM collection_members m
           WHERE m.device_id = s.device_id AND m.collection_id = ANY(${p(scope)})))`,
      );
    }
    if (q.state) where.push(`s.state = ${p(q.state)}`);
    if (q.deviceId) where.push(`s.device_id = ${p(q.deviceId)}`);
    if (q.viewerId) where.push(`s.viewer_id = ${p(q.viewerId)}`);
    if (q.from) where.push(`s.created_at >= ${p(new Date(q.from))}`);
    if (q.to) where.push(`s.created_at < ${p(new Date(q.to))}`);
    if (q.cursor) {
      const [at, cid] = decodeCursor(q.cursor, 2);
      where.push(`(s.created_at, s.id) < (${p(new Date(String(at)))}, ${p(String(cid))}::uuid)`);
    }
    const rows: SessionRow[] = await this.dataSource.query(
      `SELECT ${SESSION_COLUMNS} FROM sessions s ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY s.created_at DESC, s.id DESC LIMIT ${q.limit + 1}`,
      params,
    );
    const page = rows.slice(0, q.limit).map(view);
    const last = page[page.length - 1];
    return { items: page, nextCursor: rows.length > q.limit && last ? encodeCursor([last.createdAt, last.id]) : null };
  }

  /**
   * Cancels a session that has not started, or ends one that is active. The agent is told through
   * a job; a worker racing us loses on the version fence.
   */
  async cancel(caller: PrincipalFacts, id: string, reason: string | null): Promise<SessionView> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const s = await this.readable(caller, id);
      const own = s.viewer_id === caller.id || s.requester_id === caller.id;
      if (!own && !hasPermission(caller.grants, 'session.cancel', s.collections)) {
        throw new Forbidden(`${caller.name} may not cancel this session`);
      }
      let to: SessionState;
      if (s.state === 'active') to = 'ended';
      else if (CANCELLABLE_STATES.includes(s.state)) to = 'cancelled';
      else throw new Conflict(`session is already ${s.state}`, { state: s.state });
      const agentMayKnow = ['pushing_settings', 'awaiting_consent', 'active'].includes(s.state);
      const enqueue: JobItem[] = agentMayKnow
        ? [{ queue: QueueName.Sessions, name: JobName.EndSession, data: { sessionId: id, endedBy: caller.name } }]
        : [];
      const now = new Date();
      const transition: TransitionRequest = {
        sessionId: id,
        from: s.state,
        expectedVersion: s.version,
        actor: { id: caller.id, kind: 'principal' },
        steps: [{ to, reason, data: { by: caller.name }, patch: { endedAt: now } }],
        enqueue,
      };
      const key = this.config.audit.hmacKey;
      // With the stream head read alongside the row, the transition is one statement, atomic alone.
      const moved =
        s.head_seq !== null && s.head_hash !== null
          ? await applyTransitions(this.dataSource.manager, key, { ...transition, known: knownOf(s) }, now)
          : await this.dataSource.transaction((tx: EntityManager) => applyTransitions(tx, key, transition, now));
      if (moved) {
        if (enqueue.length) this.relay.kick();
        // The version fence guarantees the row is the one read, changed by this transition only.
        return view({ ...s, state: moved.state, version: moved.version, state_changed_at: now, ended_at: now });
      }
    }
    throw new Conflict('the session kept changing while it was being cancelled; retry');
  }

  /** The same ten checks as the worker runs, for "what if this viewer asked for that device now". */
  async dryRun(caller: PrincipalFacts, body: SessionRequestBody): Promise<EligibilityDecision> {
    const viewerId = body.viewerId ?? caller.id;
    await this.checkIntake(caller, body.deviceId, viewerId);
    const input = await loadEligibilityInput(this.dataSource.manager, {
      deviceId: body.deviceId,
      requesterId: caller.id,
      viewerId,
      ask: { type: body.type, access: body.access, reason: body.reason ?? null, ticketRef: body.ticketRef ?? null, immediate: true },
      sessionId: null,
      now: new Date(),
      policy: { ...DEFAULT_ELIGIBILITY_POLICY, presenceGraceSeconds: this.config.presenceGraceSeconds },
    });
    if ('missing' in input) throw new NotFound('principal', caller.id);
    return evaluateEligibility(input);
  }
}

