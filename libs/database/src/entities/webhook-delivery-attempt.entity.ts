import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** One HTTP attempt of a delivery: what the receiver answered (a short excerpt only), or why there was no answer. */
@Entity('webhook_delivery_attempts')
@Index('ix_webhook_attempts_delivery', ['deliveryId', 'id'])
export class WebhookDeliveryAttempt {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id: string;

  @Column({ name: 'delivery_id', type: 'uuid' })
  deliveryId: string;

  @Column({ type: 'integer' })
  cycle: number;

  @Column({ type: 'integer' })
  attempt: number;

  @Column({ type: 'timestamptz' })
  at: Date;

  @Column({ name: 'duration_ms', type: 'integer' })
  durationMs: number;

  /** The HTTP status; null when no answer came (timeout, refused connection). */
  @Column({ name: 'status_code', type: 'integer', nullable: true })
  statusCode: number | null;

  @Column({ type: 'text', nullable: true })
  error: string | null;

  /** The first few hundred characters of the response body. */
  @Column({ name: 'response_excerpt', type: 'text', nullable: true })
  responseExcerpt: string | null;
}
