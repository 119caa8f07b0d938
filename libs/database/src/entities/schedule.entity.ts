import { Column, Entity, Index } from 'typeorm';
import type { AccessMode, SessionType } from '@rcflow/domain';
import { BaseEntity } from './base.entity';

/**
 * A recurring booking: when (`spec`, a ScheduleSpec of @rcflow/schedules), on what (devices or a
 * collection, read at each occurrence), for whom and how. PostgreSQL is its source of truth; BullMQ
 * holds one delayed job for its next occurrence, rebuilt from `next_at` by the sweep.
 */
@Entity('schedules')
@Index('ix_schedules_due', ['state', 'nextAt'])
@Index('ix_schedules_owner', ['ownerId', 'createdAt'])
export class Schedule extends BaseEntity {
  @Column({ type: 'text' })
  name: string;

  /** The principal the occurrences are requested as, with its grants as they are at each occurrence. */
  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId: string;

  /** The timing, as scheduleSpecSchema accepted it. */
  @Column({ type: 'jsonb' })
  spec: Record<string, unknown>;

  /** The devices each occurrence asks for; null when the schedule targets a collection. */
  @Column({ name: 'device_ids', type: 'uuid', array: true, nullable: true })
  deviceIds: string[] | null;

  /** The collection whose members at each occurrence are asked for; null when devices are listed. */
  @Column({ name: 'collection_id', type: 'uuid', nullable: true })
  collectionId: string | null;

  /** The viewer when it is not the owner. */
  @Column({ name: 'viewer_id', type: 'uuid', nullable: true })
  viewerId: string | null;

  @Column({ type: 'text' })
  type: SessionType;

  @Column({ type: 'text' })
  access: AccessMode;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  @Column({ name: 'ticket_ref', type: 'text', nullable: true })
  ticketRef: string | null;

  /** Tell the user at the device this many minutes before each occurrence; null: no reminder. */
  @Column({ name: 'remind_minutes', type: 'integer', nullable: true })
  remindMinutes: number | null;

  /** With the reminder, ask the user to agree ahead (attended devices whose settings ask permission). */
  @Column({ name: 'ask_approval', type: 'boolean', default: false })
  askApproval: boolean;

  /** active, paused, ended (no occurrence left) or deleted (kept for its occurrences and audit trail). */
  @Column({ type: 'text', default: 'active' })
  state: string;

  /** The last occurrence decided (run or expired); occurrences are planned after it. */
  @Column({ name: 'last_planned_at', type: 'timestamptz', nullable: true })
  lastPlannedAt: Date | null;

  /** The next occurrence, whose job is (or is to be) delayed in BullMQ; null when none is left. */
  @Column({ name: 'next_at', type: 'timestamptz', nullable: true })
  nextAt: Date | null;

  /** Fences updates: a change or a decided occurrence applies only from the version read. */
  @Column({ type: 'integer', default: 1 })
  version: number;
}
