import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One device's part in an occurrence: the session asked for, or why intake refused it. */
export interface OccurrenceTarget {
  deviceId: string;
  sessionId: string | null;
  refused: string | null;
}

/**
 * What became of one occurrence of a schedule: one row per schedule and time, whatever ran twice
 * (its primary key), written with the schedule's progress in one transaction.
 */
@Entity('schedule_occurrences')
export class ScheduleOccurrence {
  @PrimaryColumn({ name: 'schedule_id', type: 'uuid' })
  scheduleId: string;

  @PrimaryColumn({ type: 'timestamptz' })
  at: Date;

  /** requested (sessions asked for; each goes its own way), refused (intake refused every device), expired. */
  @Column({ type: 'text' })
  outcome: string;

  /** Why it expired or was refused. */
  @Column({ type: 'text', nullable: true })
  reason: string | null;

  @Column({ type: 'jsonb', default: () => "'[]'" })
  targets: OccurrenceTarget[];

  @Column({ name: 'decided_at', type: 'timestamptz' })
  decidedAt: Date;
}
