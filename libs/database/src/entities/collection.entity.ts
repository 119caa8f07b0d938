import { Column, Entity, Index } from 'typeorm';
import { BaseEntity } from './base.entity';

/** A named set of devices; settings and permissions are granted per collection. */
@Entity('collections')
@Index('uq_collections_name', ['name'], { unique: true })
export class Collection extends BaseEntity {
  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'text', nullable: true })
  description: string | null;
}
