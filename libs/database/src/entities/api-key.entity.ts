import { Column, Entity, Index } from 'typeorm';
import { BaseEntity } from './base.entity';

/** An API key naming a principal. Only the SHA-256 of its secret is stored. */
@Entity('api_keys')
@Index('ix_api_keys_principal', ['principalId'])
export class ApiKey extends BaseEntity {
  @Column({ name: 'principal_id', type: 'uuid' })
  principalId: string;

  @Column({ type: 'text' })
  name: string;

  @Column({ name: 'secret_hash', type: 'text' })
  secretHash: string;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;
}
