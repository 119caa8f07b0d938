import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the entity model cannot express: case-insensitive principal names, and an audit trail
 * the application cannot change. UPDATE, DELETE and TRUNCATE on audit rows are refused by
 * triggers; tamper evidence (the HMAC chain) catches what a database owner could still do.
 */
export class AuditAppendOnly1795551796700 implements MigrationInterface {
  name = 'AuditAppendOnly1795551796700';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE UNIQUE INDEX "uq_principals_name" ON "principals" (lower("name"))`);
    await q.query(`CREATE FUNCTION rcflow_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON "audit_events"
      FOR EACH ROW EXECUTE FUNCTION rcflow_audit_append_only()`);
    await q.query(`CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON "audit_events"
      FOR EACH STATEMENT EXECUTE FUNCTION rcflow_audit_append_only()`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER audit_events_no_truncate ON "audit_events"`);
    await q.query(`DROP TRIGGER audit_events_no_update ON "audit_events"`);
    await q.query(`DROP FUNCTION rcflow_audit_append_only()`);
    await q.query(`DROP INDEX "uq_principals_name"`);
  }
}
