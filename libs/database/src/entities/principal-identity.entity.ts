import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A principal's id in another system (Jira accountId, ServiceNow sys_id, Zendesk user id, GitHub
 * login, e-mail), so that a ticket's assignee becomes the session's viewer. One principal per
 * external id; e-mail addresses are stored in lower case.
 */
@Entity('principal_identities')
@Index('ix_principal_identities_principal', ['principalId'])
export class PrincipalIdentity {
  @PrimaryColumn({ type: 'text' })
  system: string;

  @PrimaryColumn({ name: 'external_id', type: 'text' })
  externalId: string;

  @Column({ name: 'principal_id', type: 'uuid' })
  principalId: string;
}
