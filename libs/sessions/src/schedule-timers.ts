import { JobName, OutboxRow, QueueName } from '@rcflow/jobs';

/** A schedule as its timers need it. */
export interface ScheduleTimerFacts {
  id: string;
  /** The next occurrence; null when none is left (no timer). */
  nextAt: Date | null;
  /** Minutes before the occurrence the user at the device is told; null: no notice. */
  remindMinutes: number | null;
}

/**
 * The outbox rows that arm a schedule for its next occurrence: the occurrence's timer (a delayed job
 * named by schedule and time, so re-arming the same occurrence is one job) and, with a reminder,
 * the notice's (due `remindMinutes` before; at once when that has passed). Written in the same
 * transaction as the schedule's `next_at`, by the API (create, update, resume), the materializer
 * (after each occurrence) and the sweep (a timer Redis lost).
 */
export function scheduleTimerRows(s: ScheduleTimerFacts): OutboxRow[] {
  if (s.nextAt === null) return [];
  const at = s.nextAt.toISOString();
  const rows: OutboxRow[] = [
    { job: { queue: QueueName.Schedules, name: JobName.ScheduleOccurrence, data: { scheduleId: s.id, at } }, runAt: s.nextAt },
  ];
  if (s.remindMinutes !== null) {
    rows.push({
      job: { queue: QueueName.Schedules, name: JobName.SessionNotice, data: { sessionId: null, scheduleId: s.id, at } },
      runAt: new Date(s.nextAt.getTime() - s.remindMinutes * 60_000),
    });
  }
  return rows;
}

/** The audit stream of a schedule: its changes and what became of each occurrence. */
export const scheduleStream = (id: string) => `schedule:${id}`;
