import { Column, Entity, Index } from 'typeorm';
import type { RemoteToolsSettings } from '@rcflow/domain';
import { BaseEntity } from './base.entity';

/**
 * A set of client settings. Exactly one is the default (complete, order 10000);
 * custom sets carry the remote-tools values they configure and win by lowest order.
 */
@Entity('client_settings')
@Index('uq_client_settings_name', ['name'], { unique: true })
@Index('uq_client_settings_default', ['isDefault'], { unique: true, where: 'is_default' })
export class ClientSettings extends BaseEntity {
  @Column({ type: 'text' })
  name: string;

  @Column({ name: 'is_default', type: 'boolean', default: false })
  isDefault: boolean;

  @Column({ name: 'priority', type: 'integer' })
  order: number;

  @Column({ name: 'remote_tools', type: 'jsonb' })
  remoteTools: Partial<RemoteToolsSettings>;
}
