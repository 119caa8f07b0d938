import { Column, Entity, Index } from 'typeorm';
import type { RoleName } from '@rcflow/domain';
import { BaseEntity } from './base.entity';

/** A role granted to a principal (or group) over a scope of collections; null scope = all. */
@Entity('role_assignments')
@Index('ix_role_assignments_principal', ['principalId'])
export class RoleAssignment extends BaseEntity {
  @Column({ name: 'principal_id', type: 'uuid' })
  principalId: string;

  @Column({ type: 'text' })
  role: RoleName;

  @Column({ name: 'collection_ids', type: 'uuid', array: true, nullable: true })
  collectionIds: string[] | null;
}
