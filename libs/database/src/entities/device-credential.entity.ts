import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** A credential bound to one device, issued at enrolment. Only the SHA-256 of its secret is stored. */
@Entity('device_credentials')
@Index('ix_device_credentials_device', ['deviceId'])
export class DeviceCredential {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @Column({ name: 'secret_hash', type: 'text' })
  secretHash: string;

  @Column({ name: 'enrolment_token_id', type: 'uuid', nullable: true })
  enrolmentTokenId: string | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
