import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The reports' rollup (apps/api/src/reports/report-rollup.service.ts): session requests counted
 * per UTC day of request, device, viewer and state, kept by a periodic job outside the intake and
 * transition path, and the watermark up to which it holds every transition (a single row).
 */
export class ReportRollups1796300000000 implements MigrationInterface {
  name = 'ReportRollups1796300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "report_rollups" ("day" date NOT NULL, "device_id" uuid NOT NULL, "viewer_id" uuid NOT NULL, "state" text NOT NULL, "sessions" integer NOT NULL, "started" integer NOT NULL, CONSTRAINT "PK_report_rollups" PRIMARY KEY ("day", "device_id", "viewer_id", "state"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "report_rollup_watermark" ("id" smallint NOT NULL, "through" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_report_rollup_watermark" PRIMARY KEY ("id"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "report_rollup_watermark"`);
    await queryRunner.query(`DROP TABLE "report_rollups"`);
  }
}
