import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** A short-lived, single-use token a viewer presents to connect to an active session. Stored hashed. */
@Entity('viewer_tokens')
@Index('ix_viewer_tokens_session', ['sessionId'])
export class ViewerToken {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'session_id', type: 'uuid' })
  sessionId: string;

  @Column({ name: 'secret_hash', type: 'text' })
  secretHash: string;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
