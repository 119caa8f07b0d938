import { CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** A custom client settings set deployed to a collection. */
@Entity('settings_deployments')
@Index('ix_settings_deployments_collection', ['collectionId'])
export class SettingsDeployment {
  @PrimaryColumn({ name: 'settings_id', type: 'uuid' })
  settingsId: string;

  @PrimaryColumn({ name: 'collection_id', type: 'uuid' })
  collectionId: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
