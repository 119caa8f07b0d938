import { Column, Entity } from 'typeorm';
import { BaseEntity } from './base.entity';

/** Where rcflow posts the audit events an administrator subscribed to, signed per Standard Webhooks. */
@Entity('webhook_subscriptions')
export class WebhookSubscription extends BaseEntity {
  @Column({ type: 'text' })
  url: string;

  /** Audit action names (`session.active`), prefixes (`session.*`) or `*`. */
  @Column({ name: 'event_types', type: 'text', array: true })
  eventTypes: string[];

  /** Only events about a device in this collection (when the event is dispatched); null: every event. */
  @Column({ name: 'collection_id', type: 'uuid', nullable: true })
  collectionId: string | null;

  @Column({ type: 'boolean', default: true })
  enabled: boolean;

  @Column({ type: 'text', nullable: true })
  description: string | null;

  /** The signing secret, sealed (AES-256-GCM, bound to the id) under WEBHOOK_SECRETS_KEY; never returned after it is issued. */
  @Column({ name: 'secret_sealed', type: 'text' })
  secretSealed: string;

  /** After a rotation, the secret before it, sealed the same way: deliveries carry its signature too until `previousSecretUntil`. */
  @Column({ name: 'previous_secret_sealed', type: 'text', nullable: true })
  previousSecretSealed: string | null;

  @Column({ name: 'previous_secret_until', type: 'timestamptz', nullable: true })
  previousSecretUntil: Date | null;
}
