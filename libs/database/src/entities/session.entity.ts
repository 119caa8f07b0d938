import { Column, Entity, Index } from 'typeorm';
import type { AccessMode, ConsentRule, SessionState, SessionType } from '@rcflow/domain';
import { BaseEntity } from './base.entity';

/**
 * A session request and where it stands. `version` fences every transition:
 * an UPDATE applies only from the state and version the caller read.
 */
@Entity('sessions')
@Index('ix_sessions_created', ['createdAt', 'id'])
@Index('ix_sessions_device', ['deviceId', 'createdAt'])
@Index('ix_sessions_viewer', ['viewerId', 'createdAt'])
@Index('ix_sessions_state', ['state', 'stateChangedAt'])
// The unattended-sessions report, in request order.
@Index('ix_sessions_unattended', ['createdAt', 'id'], { where: "consent_rule = 'unattended_allowed'" })
@Index('ix_sessions_occurrence', ['scheduleId', 'occurrenceAt'], { where: 'schedule_id IS NOT NULL' })
@Index('uq_sessions_one_controller', ['deviceId'], {
  unique: true,
  // CONTROLLING_STATES of libs/domain (a literal: entities load in jest's global setup, where the
  // @rcflow aliases do not resolve); test/integration/schema-drift.spec.ts fails when they differ.
  where: "state IN ('eligible','pushing_settings','awaiting_consent','active')",
})
export class Session extends BaseEntity {
  @Column({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @Column({ name: 'viewer_id', type: 'uuid' })
  viewerId: string;

  @Column({ name: 'requester_id', type: 'uuid' })
  requesterId: string;

  @Column({ type: 'text' })
  type: SessionType;

  @Column({ type: 'text' })
  access: AccessMode;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  @Column({ name: 'ticket_ref', type: 'text', nullable: true })
  ticketRef: string | null;

  /** The ticket integration whose delivery asked for the session: its outcomes are written back there. */
  @Column({ name: 'ticket_integration_id', type: 'uuid', nullable: true })
  ticketIntegrationId: string | null;

  /** The id the vendor's API takes for the ticket (ServiceNow: sys_id); null: the reference. */
  @Column({ name: 'ticket_api_id', type: 'text', nullable: true })
  ticketApiId: string | null;

  @Column({ type: 'text' })
  state: SessionState;

  /** Booked ahead: the session waits `scheduled` until this time. */
  @Column({ name: 'not_before', type: 'timestamptz', nullable: true })
  notBefore: Date | null;

  /** The latest start of a booked session: not started by then, it ends `expired`. */
  @Column({ name: 'not_after', type: 'timestamptz', nullable: true })
  notAfter: Date | null;

  /** The schedule whose occurrence asked for the session; null when a caller or a ticket did. */
  @Column({ name: 'schedule_id', type: 'uuid', nullable: true })
  scheduleId: string | null;

  /** The time of that occurrence. */
  @Column({ name: 'occurrence_at', type: 'timestamptz', nullable: true })
  occurrenceAt: Date | null;

  /** A booking's reminder to the user at the device, this many minutes before notBefore; null: none. */
  @Column({ name: 'remind_minutes', type: 'integer', nullable: true })
  remindMinutes: number | null;

  /** With the reminder, the user is asked to agree ahead (pre-approval). */
  @Column({ name: 'ask_approval', type: 'boolean', default: false })
  askApproval: boolean;

  @Column({ name: 'state_changed_at', type: 'timestamptz' })
  stateChangedAt: Date;

  @Column({ type: 'integer', default: 1 })
  version: number;

  /** How often the reconciliation sweep re-enqueued this session; capped so a poison request ends. */
  @Column({ type: 'integer', default: 0 })
  requeues: number;

  @Column({ name: 'consent_rule', type: 'text', nullable: true })
  consentRule: ConsentRule | null;

  @Column({ name: 'settings_hash', type: 'text', nullable: true })
  settingsHash: string | null;

  @Column({ name: 'failure_cause', type: 'text', nullable: true })
  failureCause: string | null;

  /** Where the viewer connects, as the agent reported when the session started. */
  @Column({ name: 'connect_info', type: 'jsonb', nullable: true })
  connectInfo: { host: string; port: number } | null;

  @Column({ name: 'started_at', type: 'timestamptz', nullable: true })
  startedAt: Date | null;

  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true })
  endedAt: Date | null;
}
