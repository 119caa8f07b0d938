import { Column, Entity, Index } from 'typeorm';
import type { OsFamily } from '@rcflow/domain';
import { BaseEntity } from './base.entity';

/** A managed computer and what its agent last reported. */
@Entity('devices')
@Index('uq_devices_hostname', ['hostname'], { unique: true })
@Index('uq_devices_external_id', ['externalId'], { unique: true, where: '"external_id" IS NOT NULL' })
export class Device extends BaseEntity {
  @Column({ type: 'text' })
  hostname: string;

  @Column({ type: 'text', nullable: true })
  fqdn: string | null;

  /** The device's id in another inventory (a CMDB sys_id, an asset tag), set by an admin; ticket rules match it. */
  @Column({ name: 'external_id', type: 'text', nullable: true })
  externalId: string | null;

  @Column({ name: 'domain_joined', type: 'boolean', default: false })
  domainJoined: boolean;

  @Column({ type: 'text', nullable: true })
  domain: string | null;

  @Column({ name: 'os_family', type: 'text' })
  osFamily: OsFamily;

  @Column({ name: 'os_build', type: 'text', default: '' })
  osBuild: string;

  @Column({ name: 'agent_version', type: 'text', nullable: true })
  agentVersion: string | null;

  @Column({ name: 'last_heartbeat_at', type: 'timestamptz', nullable: true })
  lastHeartbeatAt: Date | null;

  @Column({ name: 'logged_on_user', type: 'text', nullable: true })
  loggedOnUser: string | null;

  @Column({ type: 'boolean', default: false })
  locked: boolean;

  @Column({ name: 'local_administrators', type: 'text', array: true, default: () => "'{}'" })
  localAdministrators: string[];

  @Column({ type: 'boolean', default: false })
  enrolled: boolean;

  @Column({ type: 'boolean', default: false })
  retired: boolean;

  @Column({ name: 'applied_settings_hash', type: 'text', nullable: true })
  appliedSettingsHash: string | null;
}
