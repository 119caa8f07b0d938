import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { queryPrepared } from '@rcflow/database';
import { Conflict, PrincipalFacts, idempotencyRequestHash } from '@rcflow/domain';
import { OutboxRelay } from '@rcflow/jobs';
import { SESSION_COLUMNS, SessionAsk, SessionRow, SessionView, sessionView } from '../session-view';
import { IntakeBatcher } from './intake-batcher';
import { INTAKE_FACTS_SQL, IntakeOutcome, IntakeRow, intakeRefusal, intakeRow, intakeStatement } from './intake-statement';
import { observeAccepted } from '../transition-observer';

/** Requests sent to PostgreSQL in one intake statement, at most. */
const INTAKE_MAX_BATCH = 100;

const SESSION_BY_KEY_SQL = `SELECT k.request_hash, ${SESSION_COLUMNS}
  FROM idempotency_keys k JOIN sessions s ON s.id = k.session_id WHERE k.principal_id = $1::uuid AND k.key = $2::text`;

/**
 * The one way a session comes into being, whatever asked for it (the REST API today; ticket
 * triggers and schedules next): refused when the caller may not ask, answered as before for a
 * repeated Idempotency-Key, otherwise stored with its first audit event and its job.
 */
@Injectable()
export class SessionIntake {
  private readonly batcher: IntakeBatcher;

  constructor(
    private readonly dataSource: DataSource,
    private readonly relay: OutboxRelay,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    // A few statements in flight leave the rest of the pool to reads, the outbox relay and auth.
    const maxInFlight = Math.max(1, Math.floor(config.database.poolSize / 4));
    this.batcher = new IntakeBatcher((rows) => this.run(rows), maxInFlight, INTAKE_MAX_BATCH);
  }

  private async run(rows: IntakeRow[]): Promise<Map<string, IntakeOutcome>> {
    const { text, params } = intakeStatement(rows);
    const answers = await queryPrepared<{ id: string; created: boolean; collections: string[] | null; viewer_kind: string | null }>(
      this.dataSource.manager,
      text,
      params,
    );
    return new Map(answers.map((a) => [a.id, { created: a.created, collections: a.collections, viewerKind: a.viewer_kind }]));
  }

  /**
   * Accepts a request: the session, its first audit event, the idempotency record and the outbox
   * row commit together, in one statement (shared with concurrent requests, see IntakeBatcher),
   * so an accepted request holds even while Redis is down. Throws a DomainError when refused.
   */
  async submit(
    caller: PrincipalFacts,
    ask: SessionAsk,
    idempotencyKey: string | null,
  ): Promise<{ session: SessionView; replayed: boolean }> {
    const viewerId = ask.viewerId ?? caller.id;
    // The ticket's origin is where the request came from, not what it asks for: not hashed.
    const { ticket: _origin, schedule: _occurrence, ...asked } = ask;
    const requestHash = idempotencyKey
      ? idempotencyRequestHash({ ...asked, viewerId, notBefore: ask.notBefore?.toISOString(), notAfter: ask.notAfter?.toISOString() })
      : null;
    const id = randomUUID();
    const now = new Date();
    const answer = await this.batcher.submit(
      intakeRow({
        caller,
        ask,
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
        intakeRefusal(caller, ask.deviceId, viewerId, answer) ??
        new Conflict('the request raced a change to its device or Idempotency-Key; retry')
      );
    }
    this.relay.kick();
    observeAccepted(id, ask.deviceId, ask.notBefore ? 'scheduled' : 'requested', caller.id);
    return {
      session: sessionView({
        id,
        device_id: ask.deviceId,
        viewer_id: viewerId,
        requester_id: caller.id,
        type: ask.type,
        access: ask.access,
        reason: ask.reason ?? null,
        ticket_ref: ask.ticketRef ?? null,
        state: ask.notBefore ? 'scheduled' : 'requested',
        version: 1,
        not_before: ask.notBefore ?? null,
        not_after: ask.notBefore ? (ask.notAfter ?? null) : null,
        schedule_id: ask.schedule?.scheduleId ?? null,
        occurrence_at: ask.schedule?.occurrenceAt ?? null,
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
    const [row] = await queryPrepared<SessionRow & { request_hash: string }>(this.dataSource.manager, SESSION_BY_KEY_SQL, [
      principalId,
      key,
    ]);
    if (!row) return null;
    if (row.request_hash !== requestHash) throw new Conflict('this Idempotency-Key was already used with a different request body');
    return sessionView(row);
  }

  /** Throws the refusal intake would give, without storing anything (for dry runs). */
  async check(caller: PrincipalFacts, deviceId: string, viewerId: string): Promise<void> {
    const [facts] = await this.dataSource.query<{ collections: string[] | null; viewer_kind: string | null }[]>(INTAKE_FACTS_SQL, [
      deviceId,
      viewerId === caller.id ? null : viewerId,
    ]);
    const refused = intakeRefusal(caller, deviceId, viewerId, {
      collections: facts?.collections ?? null,
      viewerKind: facts?.viewer_kind ?? null,
    });
    if (refused) throw refused;
  }
}
