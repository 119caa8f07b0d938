import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Session requests of one UTC day (of `created_at`) on one device by one viewer that are in one
 * state, as of the rollup's watermark (ReportRollupWatermark). Read by the aggregate reports
 * for whole days no transition has touched since; written only by the rollup job.
 */
@Entity('report_rollups')
export class ReportRollup {
  @PrimaryColumn({ type: 'date', primaryKeyConstraintName: 'PK_report_rollups' })
  day: string;

  @PrimaryColumn({ name: 'device_id', type: 'uuid', primaryKeyConstraintName: 'PK_report_rollups' })
  deviceId: string;

  @PrimaryColumn({ name: 'viewer_id', type: 'uuid', primaryKeyConstraintName: 'PK_report_rollups' })
  viewerId: string;

  @PrimaryColumn({ type: 'text', primaryKeyConstraintName: 'PK_report_rollups' })
  state: string;

  @Column({ type: 'integer' })
  sessions: number;

  /** Of them, those that started (started_at set). */
  @Column({ type: 'integer' })
  started: number;
}

/** The one row (id 1): the rollup holds every transition whose state_changed_at is at or before `through`. */
@Entity('report_rollup_watermark')
export class ReportRollupWatermark {
  @PrimaryColumn({ type: 'smallint', primaryKeyConstraintName: 'PK_report_rollup_watermark' })
  id: number;

  @Column({ type: 'timestamptz' })
  through: Date;
}
