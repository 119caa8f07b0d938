import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { sessionStreamSql } from '@rcflow/audit';
import { rowsOf } from '@rcflow/database';
import { MOVING_STATES, TICKET_NOTE_STATES } from '@rcflow/domain';
import { JobItem, JobName, QueueName, jobIdOf, writeOutbox } from '@rcflow/jobs';
import { SessionTransitions, SnapshotColumns, snapshotOf } from '@rcflow/sessions';

/** Reads sessions (aliased s) as transitions start from them, with the head of each one's audit stream. */
const SNAPSHOT = `s.id, s.state, s.version, s.device_id, s.viewer_id, s.ticket_ref, h.seq AS head_seq, h.hash AS head_hash`;
const WITH_HEAD = `LEFT JOIN audit_stream_heads h ON h.stream = ${sessionStreamSql('s.id')}`;
const BATCH = 500;
/** Re-enqueues after which a session that never makes progress (a poison request) fails instead. */
const MAX_REQUEUES = 5;
/** How far back the sweep looks for notes owed to tickets: older outcomes are not told any more. */
const NOTE_HORIZON_HOURS = 24;
/** A pending note waits at most this long for its next attempt (libs/tickets caps Retry-After and backoff at an hour). */
const NOTE_LONGEST_WAIT_SECONDS = 3600;
/** Pages of BATCH schedules one sweep looks at, at most (their timers are checked in Redis one by one). */
const SCHEDULE_SWEEP_PAGES = 40;

/**
 * Rebuilds queue state from PostgreSQL: a session that stays in a moving state longer than the
 * stale limit — or a booked session due within two sweeps, or past due (its timer was lost) — with
 * no outbox row and no live job (Redis lost it, or its job ran out of attempts
 * without a verdict), gets its job again through the outbox.
 */
@Injectable()
export class ReconciliationSweep implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReconciliationSweep.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transitions: SessionTransitions,
    @InjectQueue(QueueName.Sessions) private readonly sessions: Queue,
    @InjectQueue(QueueName.TicketWritebacks) private readonly writebacks: Queue,
    @InjectQueue(QueueName.Schedules) private readonly schedules: Queue,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = Promise.all([this.sweep(), this.interruptLost(), this.sweepNotes(), this.sweepSchedules()])
        .then((counts) => counts.reduce((a, b) => a + b, 0))
        .catch((err: unknown) => {
          this.logger.warn(`sweep skipped: ${(err as Error).message}`);
          return 0;
        })
        .finally(() => (this.running = null));
    }, this.config.sweep.intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /**
   * Active sessions whose agent has been silent past the presence grace plus the lost grace end
   * as `interrupted`. Returns how many.
   */
  async interruptLost(): Promise<number> {
    const silentFor = this.config.presenceGraceSeconds + this.config.agent.lostGraceSeconds;
    const lost: (SnapshotColumns & { last: Date | null })[] = await this.dataSource.query(
      `SELECT ${SNAPSHOT}, d.last_heartbeat_at AS last FROM sessions s JOIN devices d ON d.id = s.device_id ${WITH_HEAD}
        WHERE s.state = 'active' AND (d.last_heartbeat_at IS NULL OR d.last_heartbeat_at < now() - make_interval(secs => $1))
        LIMIT ${BATCH}`,
      [silentFor],
    );
    let n = 0;
    for (const s of lost) {
      const moved = await this.transitions.apply({
        session: snapshotOf(s),
        actor: { id: null, kind: 'system' },
        steps: [
          {
            to: 'interrupted',
            reason: `agent silent for more than ${silentFor} s`,
            data: { lastHeartbeatAt: s.last ? new Date(s.last).toISOString() : null },
            patch: { endedAt: new Date() },
          },
        ],
      });
      if (moved) n++;
    }
    return n;
  }

  /** A session re-enqueued MAX_REQUEUES times without progress fails, so a poison request cannot loop forever. */
  private async giveUp(s: SnapshotColumns, lastError: string | null): Promise<void> {
    const moved = await this.transitions.apply({
      session: snapshotOf(s),
      actor: { id: null, kind: 'system' },
      steps: [
        {
          to: 'failed',
          reason: `no progress after ${MAX_REQUEUES} re-enqueues`,
          data: { cause: 'poison', lastError },
          patch: { failureCause: 'poison', endedAt: new Date() },
        },
      ],
    });
    if (moved) this.logger.error(`session ${s.id} failed: no progress after ${MAX_REQUEUES} re-enqueues`);
  }

  /**
   * Notes owed to tickets whose job is gone (Redis lost it before or between attempts): a ticket
   * session resting in an outcome state for longer than the stale limit, within the last day, whose
   * note was never attempted, or is pending with no attempt for longer than any retry waits, and
   * has no live job. Given its job again (same id: a live one swallows it). Returns how many.
   */
  async sweepNotes(): Promise<number> {
    const owed: { session_id: string; outcome: string; redrive: number }[] = await this.dataSource.query(
      `SELECT s.id AS session_id, s.state AS outcome, coalesce(w.redrive, 0) AS redrive
         FROM sessions s
         LEFT JOIN ticket_writebacks w ON w.session_id = s.id AND w.outcome = s.state
        WHERE s.state = ANY($1) AND s.ticket_integration_id IS NOT NULL
          AND s.state_changed_at < now() - make_interval(secs => $2::float8 / 1000)
          AND s.state_changed_at > now() - make_interval(hours => $3)
          AND (w.id IS NULL OR (w.state = 'pending'
               AND coalesce(w.last_attempt_at, w.created_at) < now() - make_interval(secs => $4 + $2::float8 / 1000)))
          AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.queue = $5 AND o.payload->>'sessionId' = s.id::text)
        ORDER BY s.state_changed_at LIMIT ${BATCH}`,
      [TICKET_NOTE_STATES, this.config.sweep.staleMs, NOTE_HORIZON_HOURS, NOTE_LONGEST_WAIT_SECONDS, QueueName.TicketWritebacks],
    );
    const lost: JobItem[] = [];
    for (const o of owed) {
      const item: JobItem = {
        queue: QueueName.TicketWritebacks,
        name: JobName.TicketWriteback,
        data: { sessionId: o.session_id, outcome: o.outcome, redrive: o.redrive },
      };
      const job = await this.writebacks.getJob(jobIdOf(item));
      const state = job ? await job.getState() : 'unknown';
      if (state === 'waiting' || state === 'active' || state === 'delayed' || state === 'prioritized') continue;
      if (job) await job.remove();
      lost.push(item);
    }
    if (lost.length === 0) return 0;
    await this.dataSource.transaction((tx) => writeOutbox(tx, lost));
    this.logger.warn(`re-enqueued ${lost.length} notes to tickets whose jobs were gone`);
    return lost.length;
  }

  /**
   * Schedules whose timer is gone (Redis lost it, or its job ran out of attempts): an active
   * schedule whose next occurrence is due within two sweeps, or past, with no outbox row and no
   * live job for it, gets its timer again from `next_at` (the same job id: a live one swallows it).
   * An occurrence past due is decided at once, by its missed policy. Returns how many.
   */
  async sweepSchedules(): Promise<number> {
    let rearmed = 0;
    // Page through every candidate (a burst of schedules due in the same minute is many more than
    // one page, each with a live timer): a lost timer behind them must not wait for them to fire.
    let after: { at: Date; id: string } | null = null;
    for (let page = 0; page < SCHEDULE_SWEEP_PAGES; page++) {
      const due: { id: string; next_at: Date }[] = await this.dataSource.query(
        `SELECT c.id, c.next_at FROM schedules c
          WHERE c.state = 'active' AND c.next_at < now() + make_interval(secs => $1::float8 / 1000)
            AND ($2::timestamptz IS NULL OR (c.next_at, c.id) > ($2::timestamptz, $3::uuid))
            AND NOT EXISTS (SELECT 1 FROM outbox o
                             WHERE o.job_id = 'occurrence.' || c.id::text || '.' || (extract(epoch FROM c.next_at) * 1000)::bigint::text)
          ORDER BY c.next_at, c.id LIMIT ${BATCH}`,
        [2 * this.config.sweep.intervalMs, after?.at ?? null, after?.id ?? null],
      );
      const last = due.at(-1);
      if (!last) break;
      after = { at: last.next_at, id: last.id };
      const items = await Promise.all(
        due.map(async (c) => {
          const item: JobItem = {
            queue: QueueName.Schedules,
            name: JobName.ScheduleOccurrence,
            data: { scheduleId: c.id, at: new Date(c.next_at).toISOString() },
          };
          const job = await this.schedules.getJob(jobIdOf(item));
          const state = job ? await job.getState() : 'unknown';
          if (state === 'waiting' || state === 'active' || state === 'delayed' || state === 'prioritized') return null;
          if (job) await job.remove();
          return { job: item, runAt: new Date(c.next_at) };
        }),
      );
      const gone = items.filter((l) => l !== null);
      if (gone.length) {
        rearmed += await this.dataSource.transaction(async (tx) => {
          // A timer whose job finished just after the read moved the schedule on: not lost after all.
          const still = rowsOf<{ id: string; next_at: Date }>(
            await tx.query(`SELECT id, next_at FROM schedules WHERE id = ANY($1::uuid[]) AND state = 'active' FOR UPDATE`, [
              gone.map((l) => l.job.data.scheduleId),
            ]),
          );
          const current = new Set(still.map((r) => `${r.id}.${new Date(r.next_at).getTime()}`));
          const lost = gone.filter((l) => current.has(`${l.job.data.scheduleId}.${l.runAt.getTime()}`));
          await writeOutbox(tx, lost);
          return lost.length;
        });
      }
      if (due.length < BATCH) break;
    }
    if (rearmed) this.logger.warn(`re-armed ${rearmed} schedule timers that were gone`);
    return rearmed;
  }

  /** One pass; returns how many sessions were re-enqueued. */
  async sweep(): Promise<number> {
    // A booked session is looked at from two sweeps before its start: a timer Redis lost is rebuilt
    // in time to fire when it should.
    const stale: (SnapshotColumns & { requeues: number; not_before: Date | null })[] = await this.dataSource.query(
      `SELECT ${SNAPSHOT}, s.requeues, s.not_before FROM sessions s ${WITH_HEAD}
        WHERE ((s.state = ANY($1) AND s.state_changed_at < now() - make_interval(secs => $2::float8 / 1000))
               OR (s.state = 'scheduled' AND s.not_before < now() + make_interval(secs => $3::float8 / 1000)))
          AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = 'advance.' || s.id::text)
        ORDER BY s.state_changed_at LIMIT ${BATCH}`,
      [MOVING_STATES, this.config.sweep.staleMs, 2 * this.config.sweep.intervalMs],
    );
    const lost: { item: JobItem; sessionId: string; version: number; requeues: number; runAt: Date | null }[] = [];
    for (const s of stale) {
      const item: JobItem = { queue: QueueName.Sessions, name: JobName.AdvanceSession, data: { sessionId: s.id } };
      const job = await this.sessions.getJob(jobIdOf(item));
      const state = job ? await job.getState() : 'unknown';
      if (state === 'waiting' || state === 'active' || state === 'delayed' || state === 'prioritized') continue;
      // A finished job would swallow the re-enqueue by its id; remove it first.
      if (job) await job.remove();
      if (s.requeues >= MAX_REQUEUES) {
        await this.giveUp(s, job?.failedReason ?? null);
        continue;
      }
      lost.push({ item, sessionId: s.id, version: s.version, requeues: s.requeues, runAt: s.state === 'scheduled' ? s.not_before : null });
    }
    if (lost.length === 0) return 0;
    const requeued = await this.dataSource.transaction(async (tx) => {
      // Fenced by the count read: of several sweepers that found the same session, one re-enqueues it;
      // and by the version read: a session whose job finished just after the read (it moved on) is not lost.
      const updated = rowsOf<{ id: string }>(
        await tx.query(
          `UPDATE sessions SET requeues = sessions.requeues + 1 FROM unnest($1::uuid[], $2::int[], $3::int[]) AS u(id, requeues, version)
          WHERE sessions.id = u.id AND sessions.requeues = u.requeues AND sessions.version = u.version RETURNING sessions.id`,
          [lost.map((l) => l.sessionId), lost.map((l) => l.requeues), lost.map((l) => l.version)],
        ),
      );
      const ids = new Set(updated.map((r) => r.id));
      const rows = lost.filter((l) => ids.has(l.sessionId)).map((l) => ({ job: l.item, runAt: l.runAt }));
      await writeOutbox(tx, rows);
      return rows.length;
    });
    if (requeued) this.logger.warn(`re-enqueued ${requeued} sessions whose jobs were gone`);
    return requeued;
  }
}
