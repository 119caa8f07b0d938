import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * What the user at a device is told ahead of a booked session (a one-off booking's session, or one
 * occurrence of a schedule on one device): a reminder, and when asked for, the user's agreement
 * ahead (pre-approval), which the consent check honours inside [window_start, window_end].
 */
@Entity('session_notices')
@Index('uq_session_notices_session', ['sessionId'], { unique: true, where: 'session_id IS NOT NULL' })
@Index('uq_session_notices_occurrence', ['scheduleId', 'occurrenceAt', 'deviceId'], {
  unique: true,
  where: 'schedule_id IS NOT NULL',
})
@Index('ix_session_notices_device', ['deviceId', 'windowStart'])
export class SessionNotice {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  /** The one-off booking's session; null for a schedule's occurrence. */
  @Column({ name: 'session_id', type: 'uuid', nullable: true })
  sessionId: string | null;

  @Column({ name: 'schedule_id', type: 'uuid', nullable: true })
  scheduleId: string | null;

  @Column({ name: 'occurrence_at', type: 'timestamptz', nullable: true })
  occurrenceAt: Date | null;

  /** From when to when the session may start (pre-approval covers exactly this). */
  @Column({ name: 'window_start', type: 'timestamptz' })
  windowStart: Date;

  @Column({ name: 'window_end', type: 'timestamptz' })
  windowEnd: Date;

  @Column({ name: 'ask_approval', type: 'boolean', default: false })
  askApproval: boolean;

  /** planned, delivered (the agent acknowledged it), undeliverable (device offline), cancelled. */
  @Column({ type: 'text', default: 'planned' })
  state: string;

  /** not_asked, pending, granted, denied, revoked. */
  @Column({ type: 'text', default: 'not_asked' })
  approval: string;

  @Column({ name: 'answered_by', type: 'text', nullable: true })
  answeredBy: string | null;

  @Column({ name: 'answered_at', type: 'timestamptz', nullable: true })
  answeredAt: Date | null;

  @Column({ name: 'delivered_at', type: 'timestamptz', nullable: true })
  deliveredAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
