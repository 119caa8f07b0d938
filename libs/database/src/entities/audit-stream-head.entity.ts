import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The last event of each audit stream; the row lock serializes appends to one stream only. */
@Entity('audit_stream_heads')
export class AuditStreamHead {
  @PrimaryColumn({ type: 'text' })
  stream: string;

  @Column({ type: 'integer' })
  seq: number;

  @Column({ type: 'text' })
  hash: string;
}
