import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One event owed to one subscription: written by the dispatcher with its outbox row in one
 * transaction (one per subscription and audit event, whatever crashes), its id the `webhook-id`
 * of every attempt. pending until the receiver answers 2xx (delivered) or the attempts run out
 * (dead); failed when it cannot be sent as configured. dead and failed are re-drivable.
 */
@Entity('webhook_deliveries')
@Index('uq_webhook_deliveries_event', ['subscriptionId', 'eventId'], { unique: true })
@Index('ix_webhook_deliveries_subscription', ['subscriptionId', 'createdAt', 'id'])
@Index('ix_webhook_deliveries_pending', ['nextAttemptAt'], { where: "state = 'pending'" })
export class WebhookDelivery {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'subscription_id', type: 'uuid' })
  subscriptionId: string;

  /** The audit event told of; null for a test ping. */
  @Column({ name: 'event_id', type: 'bigint', nullable: true })
  eventId: string | null;

  @Column({ name: 'event_type', type: 'text' })
  eventType: string;

  /** The body sent, as JSON (the same bytes at every attempt). */
  @Column({ type: 'text' })
  body: string;

  /** pending, delivered, failed or dead. */
  @Column({ type: 'text', default: 'pending' })
  state: string;

  /** Attempts in the current cycle (a re-drive starts a new cycle at 0). */
  @Column({ type: 'integer', default: 0 })
  attempts: number;

  /** Re-drives so far; each one is a new job. */
  @Column({ type: 'integer', default: 0 })
  cycle: number;

  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true })
  nextAttemptAt: Date | null;

  /** While an attempt is in flight: until when it holds the delivery. */
  @Column({ name: 'lease_until', type: 'timestamptz', nullable: true })
  leaseUntil: Date | null;

  @Column({ name: 'last_status', type: 'integer', nullable: true })
  lastStatus: number | null;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  @Column({ name: 'delivered_at', type: 'timestamptz', nullable: true })
  deliveredAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
