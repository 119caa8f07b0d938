import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { AuditEntry, appendAudit } from '@rcflow/audit';
import { OccurrenceTarget, loadPrincipalFacts, rowsOf } from '@rcflow/database';
import { Conflict, DomainError, type AccessMode, type SessionType } from '@rcflow/domain';
import { OutboxRelay, writeOutbox } from '@rcflow/jobs';
import { ScheduleSpec, planCatchUp, type ExpiryReason } from '@rcflow/schedules';
import { SessionIntake, scheduleStream, scheduleTimerRows } from '@rcflow/sessions';
import type { NotYet } from '../handlers/advance-session.handler';

/** A schedules row as the materializer reads it. */
export interface ScheduleRow {
  id: string;
  name: string;
  owner_id: string;
  spec: ScheduleSpec;
  device_ids: string[] | null;
  collection_id: string | null;
  viewer_id: string | null;
  type: SessionType;
  access: AccessMode;
  reason: string | null;
  ticket_ref: string | null;
  remind_minutes: number | null;
  state: string;
  last_planned_at: Date | null;
  next_at: Date | null;
  version: number;
}

const SCHEDULE_SQL = `SELECT id, name, owner_id, spec, device_ids, collection_id, viewer_id, type, access, reason, ticket_ref,
    remind_minutes, state, last_planned_at, next_at, version FROM schedules WHERE id = $1::uuid`;
const MEMBERS_SQL = `SELECT device_id FROM collection_members WHERE collection_id = $1::uuid ORDER BY device_id`;

/** What became of one occurrence. */
export interface DecidedOccurrence {
  at: Date;
  outcome: 'requested' | 'refused' | 'expired';
  reason: string | null;
  targets: OccurrenceTarget[];
}

/** How early an occurrence's timer may decide it (BullMQ's delayed jobs fire on time or a little late). */
const EARLY_TOLERANCE_MS = 1000;
/** Occurrences decided per transaction; a longer backlog (after downtime) is decided in several. */
const PLAN_LIMIT = 200;
/** At most this many devices of a collection are asked for in one occurrence; the rest are refused with the reason. */
export const MAX_OCCURRENCE_DEVICES = 1000;

/**
 * The occurrence materializer: when a schedule's timer fires, decides every occurrence due since
 * the last one decided (planCatchUp: run, or expired after downtime per the schedule's missed
 * policy), asks for the sessions of those that run through the one intake as the schedule's owner
 * (grants, device and viewer read now, so a role revoked since the booking refuses it), records
 * each occurrence once, and arms the timer of the next.
 *
 * Exactly once per occurrence, whatever runs twice: the sessions are asked for under an
 * Idempotency-Key per schedule, occurrence and device (a second run, or a second worker, gets the
 * same sessions back); the occurrence row's primary key is (schedule, time); the schedule's progress
 * (last_planned_at, next_at) is fenced by its version. A timer whose time is no longer the
 * schedule's next_at (changed, paused, deleted, or decided by another run) does nothing.
 */
@Injectable()
export class ScheduleOccurrenceHandler {
  private readonly logger = new Logger(ScheduleOccurrenceHandler.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly intake: SessionIntake,
    private readonly relay: OutboxRelay,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async handle(scheduleId: string, at: string, now: () => number = Date.now): Promise<NotYet | undefined> {
    const timerAt = Date.parse(at);
    // Each turn decides up to PLAN_LIMIT occurrences; a backlog longer than that takes several.
    for (;;) {
      const s = await this.load(scheduleId);
      if (s?.state !== 'active' || s.next_at === null || new Date(s.next_at).getTime() !== timerAt) return;
      const nowMs = now();
      if (timerAt - nowMs > EARLY_TOLERANCE_MS) return { runAt: new Date(timerAt) };
      const plan = planCatchUp(s.spec, s.last_planned_at && new Date(s.last_planned_at), new Date(Math.max(nowMs, timerAt)), {
        limit: PLAN_LIMIT,
        graceSeconds: this.config.schedules.skipGraceSeconds,
      });
      const decided: DecidedOccurrence[] = [];
      for (const o of plan.due) {
        decided.push(o.decision === 'run' ? await this.run(s, o.at) : expired(o.at, o.reason));
      }
      const last = decided.at(-1)?.at ?? (s.last_planned_at && new Date(s.last_planned_at));
      // More due than one turn decides: the timer stays where it is, and the next turn goes on.
      const nextAt = plan.complete ? plan.next : new Date(timerAt);
      const recorded = await this.record(s, decided, last, nextAt);
      if (recorded) this.relay.kick();
      if (recorded && plan.complete) return;
      // Not recorded: another run (or an API change) moved the schedule on; the reload decides.
    }
  }

  private async load(id: string): Promise<ScheduleRow | null> {
    const [row] = await this.dataSource.query<ScheduleRow[]>(SCHEDULE_SQL, [id]);
    return row ?? null;
  }

  /**
   * Asks for the occurrence's sessions, one per device, as the owner stands now. A refusal by
   * intake (the owner may no longer request sessions, a device left its scope or was deleted) is
   * recorded with intake's reason; other errors fail the job, to be retried (the sessions already
   * asked for come back under their keys).
   */
  async run(s: ScheduleRow, at: Date): Promise<DecidedOccurrence> {
    const owner = await loadPrincipalFacts(this.dataSource.manager, s.owner_id);
    if (!owner) return refused(at, `the owner ${s.owner_id} no longer exists`, []);
    if (owner.disabled) return refused(at, `the owner ${owner.name} is disabled`, []);
    let devices = s.device_ids ?? [];
    let overflow: string[] = [];
    if (s.collection_id !== null) {
      const members = await this.dataSource.query<{ device_id: string }[]>(MEMBERS_SQL, [s.collection_id]);
      devices = members.slice(0, MAX_OCCURRENCE_DEVICES).map((m) => m.device_id);
      overflow = members.slice(MAX_OCCURRENCE_DEVICES).map((m) => m.device_id);
      if (members.length === 0) return refused(at, `collection ${s.collection_id} has no devices`, []);
    }
    const notAfter = new Date(at.getTime() + s.spec.windowMinutes * 60_000);
    const targets = await Promise.all(
      devices.map(async (deviceId): Promise<OccurrenceTarget> => {
        try {
          const { session } = await this.intake.submit(
            owner,
            {
              deviceId,
              viewerId: s.viewer_id ?? undefined,
              type: s.type,
              access: s.access,
              reason: s.reason ?? undefined,
              ticketRef: s.ticket_ref ?? undefined,
              notBefore: at,
              notAfter,
              schedule: { scheduleId: s.id, occurrenceAt: at },
            },
            `schedule:${s.id}:${at.getTime()}:${deviceId}`,
          );
          return { deviceId, sessionId: session.id, refused: null };
        } catch (err) {
          if (!(err instanceof DomainError) || err instanceof Conflict) throw err;
          return { deviceId, sessionId: null, refused: err.message };
        }
      }),
    );
    for (const deviceId of overflow) {
      targets.push({ deviceId, sessionId: null, refused: `more than ${MAX_OCCURRENCE_DEVICES} devices in the collection` });
    }
    if (targets.some((t) => t.sessionId !== null)) return { at, outcome: 'requested', reason: null, targets };
    return refused(at, [...new Set(targets.map((t) => t.refused))].join('; '), targets);
  }

  /**
   * Records the decided occurrences (once each: their key) with their audit events, and moves the
   * schedule on, fenced by its version; with the next occurrence, its timer. False when the schedule
   * had moved on (the occurrences are recorded all the same: what was asked for was asked).
   */
  private record(s: ScheduleRow, decided: DecidedOccurrence[], last: Date | null, nextAt: Date | null): Promise<boolean> {
    return this.dataSource.transaction(async (tx) => {
      const fresh = decided.length ? await insertOccurrences(tx, s.id, decided) : [];
      const moved = rowsOf<{ version: number }>(
        await tx.query(
          `UPDATE schedules SET last_planned_at = $3, next_at = $4, version = version + 1, updated_at = now(),
              state = CASE WHEN $4::timestamptz IS NULL THEN 'ended' ELSE state END
            WHERE id = $1::uuid AND version = $2 RETURNING version`,
          [s.id, s.version, last, nextAt],
        ),
      );
      const entries: AuditEntry[] = fresh.map((o) => occurrenceEvent(s, o));
      if (moved.length && nextAt === null) {
        entries.push({ ...systemEntry(s), action: 'schedule.ended', outcome: 'ended', reason: 'no occurrence is left' });
      }
      if (entries.length) await appendAudit(tx, this.config.audit.hmacKey, entries);
      if (!moved.length) return false;
      await writeOutbox(tx, scheduleTimerRows({ id: s.id, nextAt, remindMinutes: s.remind_minutes }));
      for (const o of fresh) this.logger.debug(`schedule ${s.id} occurrence ${o.at.toISOString()}: ${o.outcome}`);
      return true;
    });
  }
}

const expired = (at: Date, reason: ExpiryReason): DecidedOccurrence => ({ at, outcome: 'expired', reason, targets: [] });
const refused = (at: Date, reason: string, targets: OccurrenceTarget[]): DecidedOccurrence => ({
  at,
  outcome: 'refused',
  reason,
  targets,
});

/** Inserts the occurrences not recorded yet; returns those it inserted. */
async function insertOccurrences(tx: EntityManager, scheduleId: string, decided: DecidedOccurrence[]): Promise<DecidedOccurrence[]> {
  const inserted = rowsOf<{ at: Date }>(
    await tx.query(
      `INSERT INTO schedule_occurrences (schedule_id, at, outcome, reason, targets, decided_at)
        SELECT $1::uuid, u.at, u.outcome, u.reason, u.targets, now()
          FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::jsonb[]) AS u(at, outcome, reason, targets)
        ON CONFLICT (schedule_id, at) DO NOTHING RETURNING at`,
      [
        scheduleId,
        decided.map((o) => o.at),
        decided.map((o) => o.outcome),
        decided.map((o) => o.reason),
        decided.map((o) => JSON.stringify(o.targets)),
      ],
    ),
  );
  const times = new Set(inserted.map((r) => new Date(r.at).getTime()));
  return decided.filter((o) => times.has(o.at.getTime()));
}

function systemEntry(s: ScheduleRow): Pick<AuditEntry, 'stream' | 'actorId' | 'actorKind' | 'ticketRef'> {
  return { stream: scheduleStream(s.id), actorId: null, actorKind: 'system', ticketRef: s.ticket_ref };
}

function occurrenceEvent(s: ScheduleRow, o: DecidedOccurrence): AuditEntry {
  const one = o.targets.length === 1 ? o.targets[0] : undefined;
  return {
    ...systemEntry(s),
    action: `schedule.occurrence_${o.outcome}`,
    outcome: o.outcome,
    reason: o.reason,
    sessionId: one?.sessionId ?? null,
    deviceId: one?.deviceId ?? null,
    data: { scheduleId: s.id, occurrenceAt: o.at.toISOString(), targets: o.targets.map((t) => ({ ...t })) },
  };
}
