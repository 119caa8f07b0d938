import { Column, Entity, Index } from 'typeorm';
import { BaseEntity } from './base.entity';

/**
 * A ticket system that may ask for sessions (helpdesk ticket triggers): its kind, the principal it
 * acts as, its mapping rules, and its secrets — inbound (two may be active during rotation) and the
 * credentials for writing back to the ticket — each sealed with TICKET_SECRETS_KEY, never returned.
 */
@Entity('ticket_integrations')
@Index('uq_ticket_integrations_name_ci', { synchronize: false })
export class TicketIntegration extends BaseEntity {
  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'text' })
  kind: string;

  /** The principal (role ticket_integration) its sessions are requested by. */
  @Column({ name: 'principal_id', type: 'uuid' })
  principalId: string;

  /** `hmac` (the vendor's signature, or rcflow's) or `token` (a shared secret header). */
  @Column({ name: 'inbound_auth', type: 'text', default: 'hmac' })
  inboundAuth: string;

  /** The active inbound secrets (a JSON array of one or two), sealed. */
  @Column({ name: 'inbound_secrets_sealed', type: 'text' })
  inboundSecretsSealed: string;

  /** Where notes are written back (the vendor's base URL, or the generic receiver). */
  @Column({ name: 'outbound_url', type: 'text', nullable: true })
  outboundUrl: string | null;

  /** The write-back credentials (JSON), sealed. */
  @Column({ name: 'outbound_credentials_sealed', type: 'text', nullable: true })
  outboundCredentialsSealed: string | null;

  /** The mapping rules, in order (libs/tickets MappingRule[]). */
  @Column({ type: 'jsonb' })
  rules: object[];

  @Column({ type: 'boolean', default: true })
  enabled: boolean;
}
