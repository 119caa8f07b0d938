import { Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/**
 * How far the webhook dispatcher has read the audit trail (one row, id 1): advanced in the
 * transaction that writes the deliveries of what it read, and locked by the dispatcher at work.
 */
@Entity('webhook_cursor')
export class WebhookCursor {
  @PrimaryColumn({ type: 'smallint' })
  id: number;

  /** The audit tail's position, as it encodes it. */
  @Column({ type: 'jsonb' })
  position: unknown;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
