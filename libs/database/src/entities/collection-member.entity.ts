import { CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity('collection_members')
@Index('ix_collection_members_device', ['deviceId'])
export class CollectionMember {
  @PrimaryColumn({ name: 'collection_id', type: 'uuid' })
  collectionId: string;

  @PrimaryColumn({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
