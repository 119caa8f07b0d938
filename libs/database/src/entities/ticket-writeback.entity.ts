import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A note owed to a ticket: one per session and outcome (so a job that runs twice writes once),
 * pending until the vendor took it, dead after the last attempt (re-drivable by an admin).
 */
@Entity('ticket_writebacks')
@Index('uq_ticket_writebacks_outcome', ['sessionId', 'outcome'], { unique: true })
@Index('ix_ticket_writebacks_integration', ['integrationId', 'state'])
export class TicketWriteback {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'integration_id', type: 'uuid' })
  integrationId: string;

  @Column({ name: 'session_id', type: 'uuid' })
  sessionId: string;

  @Column({ name: 'ticket_ref', type: 'text' })
  ticketRef: string;

  /** The session state it tells of: active, rejected, denied, consent_timeout, failed, ended. */
  @Column({ type: 'text' })
  outcome: string;

  /** pending, sent, dead (after the last attempt, or refused by the vendor) or skipped (no outbound URL). */
  @Column({ type: 'text', default: 'pending' })
  state: string;

  @Column({ type: 'integer', default: 0 })
  attempts: number;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  /** How often an administrator re-drove it; each re-drive is a new job. */
  @Column({ type: 'integer', default: 0 })
  redrive: number;

  @Column({ name: 'last_attempt_at', type: 'timestamptz', nullable: true })
  lastAttemptAt: Date | null;

  /** While an attempt is in flight: until when it holds the note (another run waits until then). */
  @Column({ name: 'lease_until', type: 'timestamptz', nullable: true })
  leaseUntil: Date | null;

  @Column({ name: 'sent_at', type: 'timestamptz', nullable: true })
  sentAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
