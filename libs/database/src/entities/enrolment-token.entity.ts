import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * A one-time (or n-time, for bulk enrolment of simulators and images) expiring token an agent
 * exchanges for a device credential. Only the SHA-256 of its secret is stored.
 */
@Entity('enrolment_tokens')
export class EnrolmentToken {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'secret_hash', type: 'text' })
  secretHash: string;

  /** When set, only an agent reporting this hostname may use the token. */
  @Column({ type: 'text', nullable: true })
  hostname: string | null;

  /**
   * When set, the token re-keys this existing device (replaces its credential) and nothing else;
   * when null, it creates new devices only. No foreign key: a token outlives nothing it names
   * (enrolment checks the device again).
   */
  @Column({ name: 'device_id', type: 'uuid', nullable: true })
  deviceId: string | null;

  /** The collection a device created with this token joins (a scoped administrator's tokens always name one). */
  @Column({ name: 'collection_id', type: 'uuid', nullable: true })
  collectionId: string | null;

  @Column({ name: 'max_uses', type: 'integer', default: 1 })
  maxUses: number;

  @Column({ type: 'integer', default: 0 })
  uses: number;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
