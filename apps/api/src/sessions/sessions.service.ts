import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { appendAudit, sessionStream } from '@rcflow/audit';
import { applyTransitions, isUniqueViolation, loadEligibilityInput } from '@rcflow/database';
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
import { JobItem, JobName, OutboxRelay, QueueName, writeOutbox } from '@rcflow/jobs';
import { Conflict, Forbidden, NotFound, UnprocessableRequest } from '../common/errors';
import { decodeCursor, encodeCursor } from '../common/validation';
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

const SESSION_COLUMNS = `s.id, s.device_id, s.viewer_id, s.requester_id, s.type, s.access, s.reason, s.ticket_ref, s.state,
  s.version, s.consent_rule, s.failure_cause, s.created_at, s.state_changed_at, s.started_at, s.ended_at`;

/** Intake, reading and cancelling of sessions, each scoped to what the caller may see. */
@Injectable()
export class SessionsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly relay: OutboxRelay,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  /**
   * Accepts a request: the session, its first audit event, the idempotency record and the outbox
   * row commit together, so a 202 holds even while Redis is down.
   */
  async create(
    caller: PrincipalFacts,
    body: SessionRequestBody,
    idempotencyKey: string | null,
  ): Promise<{ session: SessionView; replayed: boolean }> {
    const viewerId = body.viewerId ?? caller.id;
    const requestHash = createHash('sha256').update(canonicalJson({ ...body, viewerId })).digest('hex');
    if (idempotencyKey) {
      const prior = await this.priorForKey(caller.id, idempotencyKey, requestHash);
      if (prior) return { session: prior, replayed: true };
    }
    await this.checkIntake(caller, body.deviceId, viewerId);

    const id = randomUUID();
    const now = new Date();
    try {
      await this.dataSource.transaction(async (tx) => {
        if (idempotencyKey) {
          await tx.query(
            'INSERT INTO idempotency_keys (principal_id, key, request_hash, session_id) VALUES ($1, $2, $3, $4)',
            [caller.id, idempotencyKey, requestHash, id],
          );
        }
        await tx.query(
          `INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, reason, ticket_ref, state,
             state_changed_at, version, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', $9, 1, $9, $9)`,
          [id, body.deviceId, viewerId, caller.id, body.type, body.access, body.reason ?? null, body.ticketRef ?? null, now],
        );
        await appendAudit(
          tx,
          this.config.audit.hmacKey,
          [
            {
              stream: sessionStream(id),
              actorId: caller.id,
              actorKind: 'principal',
              action: 'session.requested',
              outcome: 'requested',
              sessionId: id,
              deviceId: body.deviceId,
              viewerId,
              ticketRef: body.ticketRef ?? null,
              reason: body.reason ?? null,
              data: { type: body.type, access: body.access, requesterId: caller.id, version: 1 },
            },
          ],
          now,
          { newStreams: true },
        );
        await writeOutbox(tx, [{ queue: QueueName.Sessions, name: JobName.AdvanceSession, data: { sessionId: id } }]);
      });
    } catch (err) {
      // A concurrent request with the same key won the race: answer as it did.
      if (idempotencyKey && isUniqueViolation(err)) {
        const prior = await this.priorForKey(caller.id, idempotencyKey, requestHash);
        if (prior) return { session: prior, replayed: true };
      }
      throw err;
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
    const [row] = await this.dataSource.query(
      'SELECT request_hash, session_id FROM idempotency_keys WHERE principal_id = $1 AND key = $2',
      [principalId, key],
    );
    if (!row) return null;
    if (row.request_hash !== requestHash) {
      throw new Conflict('this Idempotency-Key was already used with a different request body');
    }
    return this.findRow(row.session_id);
  }

  /** Refusals that need no decision record: unknown or out-of-scope ids, or a request the caller may not make. */
  private async checkIntake(caller: PrincipalFacts, deviceId: string, viewerId: string): Promise<void> {
    if (!hasPermission(caller.grants, 'session.request')) {
      throw new Forbidden(`${caller.name} may not request sessions`);
    }
    const collections = await this.deviceCollections(deviceId);
    if (!collections) throw new NotFound('device', deviceId);
    if (!hasPermission(caller.grants, 'session.request', collections)) throw new NotFound('device', deviceId);
    if (viewerId !== caller.id) {
      if (!hasPermission(caller.grants, 'session.request_on_behalf', collections)) {
        throw new Forbidden(`${caller.name} may not request sessions on behalf of another viewer`);
      }
      const [viewer] = await this.dataSource.query('SELECT kind FROM principals WHERE id = $1', [viewerId]);
      if (!viewer) throw new UnprocessableRequest(`viewer ${viewerId} is not a known principal`);
      if (viewer.kind === 'group') throw new UnprocessableRequest('the viewer must be a user or service, not a group');
    }
  }

  private async deviceCollections(deviceId: string): Promise<string[] | null> {
    const rows: { collection_id: string | null }[] = await this.dataSource.query(
      `SELECT m.collection_id FROM devices d LEFT JOIN collection_members m ON m.device_id = d.id WHERE d.id = $1`,
      [deviceId],
    );
    if (rows.length === 0) return null;
    return rows.flatMap((r) => (r.collection_id ? [r.collection_id] : []));
  }

  private async findRow(id: string): Promise<SessionView | null> {
    const [row] = await this.dataSource.query(`SELECT ${SESSION_COLUMNS} FROM sessions s WHERE s.id = $1`, [id]);
    return row ? view(row) : null;
  }

  /** A session the caller may see: in its read scope, or one it asked for or views. */
  async get(caller: PrincipalFacts, id: string): Promise<SessionView> {
    const s = await this.findRow(id);
    if (!s || !(await this.mayRead(caller, s))) throw new NotFound('session', id);
    return s;
  }

  private async mayRead(caller: PrincipalFacts, s: SessionView): Promise<boolean> {
    if (s.viewerId === caller.id || s.requesterId === caller.id) return true;
    const collections = (await this.deviceCollections(s.deviceId)) ?? [];
    return hasPermission(caller.grants, 'session.read', collections);
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
      const s = await this.get(caller, id);
      const collections = (await this.deviceCollections(s.deviceId)) ?? [];
      const own = s.viewerId === caller.id || s.requesterId === caller.id;
      if (!own && !hasPermission(caller.grants, 'session.cancel', collections)) {
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
      const moved = await this.dataSource.transaction((tx: EntityManager) =>
        applyTransitions(tx, this.config.audit.hmacKey, {
          sessionId: id,
          from: s.state,
          expectedVersion: s.version,
          actor: { id: caller.id, kind: 'principal' },
          steps: [{ to, reason, data: { by: caller.name }, patch: { endedAt: new Date() } }],
          enqueue,
        }),
      );
      if (moved) {
        if (enqueue.length) this.relay.kick();
        return (await this.findRow(id))!;
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

