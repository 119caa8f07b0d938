import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Partial indexes for the reports (apps/api/src/reports) whose rows are a small part of their
 * table: refused eligibility decisions, unattended sessions, and the `active` audit events whose
 * consent was pre-approved or timed out. The other reports read sessions by ix_sessions_created,
 * ix_sessions_viewer and ix_sessions_device. Nothing on the intake and transition path changes.
 */
export class ReportIndexes1796200000000 implements MigrationInterface {
  name = 'ReportIndexes1796200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "ix_eligibility_decisions_refused" ON "eligibility_decisions" ("evaluated_at") WHERE eligible = false`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_sessions_unattended" ON "sessions" ("created_at", "id") WHERE consent_rule = 'unattended_allowed'`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_audit_consent_exceptions" ON "audit_events" ("occurred_at", "session_id") WHERE action = 'session.active' AND (data ->> 'consent') IN ('pre_approved', 'timed_out')`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_audit_consent_exceptions"`);
    await queryRunner.query(`DROP INDEX "public"."ix_sessions_unattended"`);
    await queryRunner.query(`DROP INDEX "public"."ix_eligibility_decisions_refused"`);
  }
}
