import { Column, Entity, Index } from 'typeorm';
import { BaseEntity } from './base.entity';

export type PrincipalKind = 'user' | 'group' | 'service';

/** A user, a group or a service account. Names are unique without regard to case. */
@Entity('principals')
@Index('uq_principals_name', { synchronize: false })
export class Principal extends BaseEntity {
  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'text' })
  kind: PrincipalKind;

  @Column({ name: 'display_name', type: 'text', nullable: true })
  displayName: string | null;

  @Column({ type: 'boolean', default: false })
  disabled: boolean;
}
