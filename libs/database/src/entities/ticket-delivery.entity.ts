import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One line of an integration's delivery log: every delivery received, whatever became of it —
 * its signature and dedupe verdicts, the rule that matched, the device and viewer resolved (or why
 * not) and the session it created. Only the first delivery of a key is `first`; redeliveries point
 * back at it.
 */
@Entity('ticket_deliveries')
@Index('ix_ticket_deliveries_integration', ['integrationId', 'id'])
@Index('uq_ticket_deliveries_first', ['integrationId', 'deliveryKey'], { unique: true, where: '"first"' })
@Index('ix_ticket_deliveries_session', ['sessionId'], { where: 'session_id IS NOT NULL' })
export class TicketDelivery {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' })
  id: string;

  @Column({ name: 'integration_id', type: 'uuid' })
  integrationId: string;

  @Column({ name: 'received_at', type: 'timestamptz', default: () => 'now()' })
  receivedAt: Date;

  @Column({ name: 'delivery_key', type: 'text' })
  deliveryKey: string;

  /** header, event-id or body-hash. */
  @Column({ name: 'key_source', type: 'text' })
  keySource: string;

  @Column({ type: 'boolean', default: false })
  first: boolean;

  @Column({ name: 'event_type', type: 'text', nullable: true })
  eventType: string | null;

  /** ok, missing, malformed, mismatch or stale. */
  @Column({ type: 'text' })
  signature: string;

  /** What became of it: session_requested, duplicate, unmatched, device_not_found, several_devices, viewer_unknown, refused… */
  @Column({ type: 'text' })
  outcome: string;

  @Column({ type: 'text', nullable: true })
  rule: string | null;

  @Column({ name: 'ticket_ref', type: 'text', nullable: true })
  ticketRef: string | null;

  /** The id the vendor's API takes to write a note to the ticket (ServiceNow: sys_id); else the reference. */
  @Column({ name: 'ticket_api_id', type: 'text', nullable: true })
  ticketApiId: string | null;

  @Column({ name: 'device_id', type: 'uuid', nullable: true })
  deviceId: string | null;

  @Column({ name: 'viewer_id', type: 'uuid', nullable: true })
  viewerId: string | null;

  @Column({ name: 'session_id', type: 'uuid', nullable: true })
  sessionId: string | null;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  /** The HTTP status the sender was given. */
  @Column({ name: 'status_code', type: 'integer' })
  statusCode: number;
}
