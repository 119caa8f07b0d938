import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { sessionStream } from '@rcflow/audit';
import { deviceInScopeSql, loadEligibilityInput, queryPrepared } from '@rcflow/database';
import {
  AGENT_AWARE_STATES,
  CANCELLABLE_STATES,
  Conflict,
  DEFAULT_ELIGIBILITY_POLICY,
  EligibilityDecision,
  Forbidden,
  NotFound,
  PrincipalFacts,
  SessionState,
  evaluateEligibility,
  hasPermission,
  scopeOf,
} from '@rcflow/domain';
import { JobName, OutboxRelay, QueueName } from '@rcflow/jobs';
import {
  SESSION_COLUMNS,
  SessionIntake,
  SessionRow,
  SessionTransitions,
  SessionView,
  SnapshotColumns,
  TransitionEffect,
  sessionView as view,
  snapshotOf,
} from '@rcflow/sessions';
import { sessionCursor } from '../common/validation';
import type { SessionRequestBody } from './sessions.schemas';

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

interface DecisionRow {
  eligible: boolean;
  consent_rule: string;
  checks: unknown;
  facts: unknown;
  evaluated_at: Date;
}

type ScopedSessionRow = SessionRow & SnapshotColumns & { collections: string[] };

function mayRead(caller: PrincipalFacts, s: ScopedSessionRow): boolean {
  if (s.viewer_id === caller.id || s.requester_id === caller.id) return true;
  return hasPermission(caller.grants, 'session.read', s.collections);
}

/** A session with its device's collections and, read in the same snapshot, its audit stream's head ($2: the stream). */
const SCOPED_SESSION_SQL = `SELECT ${SESSION_COLUMNS},
    ARRAY(SELECT m.collection_id FROM collection_members m WHERE m.device_id = s.device_id) AS collections,
    h.seq AS head_seq, h.hash AS head_hash
  FROM sessions s LEFT JOIN audit_stream_heads h ON h.stream = $2::text WHERE s.id = $1::uuid`;

/** Intake, reading and cancelling of sessions, each scoped to what the caller may see. */
@Injectable()
export class SessionsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly relay: OutboxRelay,
    private readonly intake: SessionIntake,
    private readonly transitions: SessionTransitions,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  /** A request through the one intake; see SessionIntake.submit. */
  create(
    caller: PrincipalFacts,
    body: SessionRequestBody,
    idempotencyKey: string | null,
  ): Promise<{ session: SessionView; replayed: boolean }> {
    return this.intake.submit(caller, body, idempotencyKey);
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
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `SELECT seq, occurred_at, action, outcome, actor_id, actor_kind, reason, data FROM audit_events
        WHERE stream = $1 ORDER BY seq`,
      [sessionStream(id)],
    );
    return rows.map((r) => ({
      seq: r.seq,
      at: iso(r.occurred_at as Date),
      action: r.action,
      state: r.outcome,
      actor: { id: r.actor_id, kind: r.actor_kind },
      reason: r.reason,
      data: r.data,
    }));
  }

  /**
   * What the user at the device is told ahead of the session: its booking's reminder (or its
   * occurrence's notice on its device) and the pre-approval's state; null when there is none.
   */
  async notice(id: string) {
    const [n] = await this.dataSource.query<
      {
        remind_minutes: number | null;
        ask_approval: boolean;
        notice_id: string | null;
        state: string | null;
        approval: string | null;
        answered_by: string | null;
        answered_at: Date | null;
        window_start: Date | null;
        window_end: Date | null;
      }[]
    >(
      `SELECT s.remind_minutes, s.ask_approval, n.id AS notice_id, n.state, n.approval, n.answered_by, n.answered_at,
              n.window_start, n.window_end
         FROM sessions s
         LEFT JOIN LATERAL (
           SELECT * FROM session_notices x
            WHERE x.session_id = s.id
               OR (x.schedule_id = s.schedule_id AND x.occurrence_at = s.occurrence_at AND x.device_id = s.device_id)
            LIMIT 1) n ON true
        WHERE s.id = $1`,
      [id],
    );
    if (!n || (n.remind_minutes === null && n.notice_id === null)) return null;
    return {
      remindMinutes: n.remind_minutes,
      askApproval: n.ask_approval,
      // Null until the reminder's time comes.
      id: n.notice_id,
      state: n.state ?? 'planned',
      approval: n.approval,
      answeredBy: n.answered_by,
      answeredAt: iso(n.answered_at),
      windowStart: iso(n.window_start),
      windowEnd: iso(n.window_end),
    };
  }

  async decision(id: string) {
    const [d] = await this.dataSource.query<DecisionRow[]>(
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
      where.push(`(s.viewer_id = ${p(caller.id)} OR s.requester_id = $${params.length} OR ${deviceInScopeSql('s.device_id', scope, p)})`);
    }
    if (q.state) where.push(`s.state = ${p(q.state)}`);
    if (q.deviceId) where.push(`s.device_id = ${p(q.deviceId)}`);
    if (q.viewerId) where.push(`s.viewer_id = ${p(q.viewerId)}`);
    if (q.from) where.push(`s.created_at >= ${p(new Date(q.from))}`);
    if (q.to) where.push(`s.created_at < ${p(new Date(q.to))}`);
    if (q.cursor) {
      const [at, cid] = sessionCursor.decode(q.cursor);
      where.push(`(s.created_at, s.id) < (${p(new Date(at))}, ${p(cid)}::uuid)`);
    }
    const rows: SessionRow[] = await this.dataSource.query(
      `SELECT ${SESSION_COLUMNS} FROM sessions s ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY s.created_at DESC, s.id DESC LIMIT ${q.limit + 1}`,
      params,
    );
    const page = rows.slice(0, q.limit).map(view);
    const last = page[page.length - 1];
    return { items: page, nextCursor: rows.length > q.limit && last ? sessionCursor.encode([last.createdAt, last.id]) : null };
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
      const effects: TransitionEffect[] = AGENT_AWARE_STATES.includes(s.state)
        ? [{ kind: 'enqueue', job: { queue: QueueName.Sessions, name: JobName.EndSession, data: { sessionId: id, endedBy: caller.name } } }]
        : [];
      const endedAt = new Date();
      const moved = await this.transitions.apply({
        session: snapshotOf(s),
        actor: { id: caller.id, kind: 'principal' },
        steps: [{ to, reason, data: { by: caller.name }, patch: { endedAt } }],
        effects,
      });
      if (moved) {
        if (effects.length) this.relay.kick();
        // The version fence guarantees the row is the one read, changed by this transition only.
        return view({ ...s, state: moved.state, version: moved.version, state_changed_at: moved.at, ended_at: endedAt });
      }
    }
    throw new Conflict('the session kept changing while it was being cancelled; retry');
  }

  /** The same ten checks as the worker runs, for "what if this viewer asked for that device now". */
  async dryRun(caller: PrincipalFacts, body: SessionRequestBody): Promise<EligibilityDecision> {
    const viewerId = body.viewerId ?? caller.id;
    await this.intake.check(caller, body.deviceId, viewerId);
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
