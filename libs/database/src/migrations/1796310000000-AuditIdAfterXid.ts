import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An audit event's id is drawn only after its transaction has an xid (`rcflow_audit_next_id()`).
 *
 * The gap-safe audit tail (libs/audit/src/audit-tail.ts) decides that a missing id will never
 * appear once every transaction that held an xid when the gap was seen has ended. A plain
 * `nextval` default hands out the id before `heap_insert` gives the transaction its xid, so a
 * writer could hold an id without an xid and escape that wait. The CASE evaluates
 * `pg_current_xact_id()` (which assigns the xid when there is none) before `nextval`; VOLATILE so
 * the planner keeps that order. The sequence stays the column's (CACHE 1: ids are drawn in order
 * across sessions, which the tail also relies on).
 */
export class AuditIdAfterXid1796310000000 implements MigrationInterface {
  name = 'AuditIdAfterXid1796310000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE FUNCTION rcflow_audit_next_id() RETURNS bigint LANGUAGE sql VOLATILE AS $$
      SELECT CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval('audit_events_id_seq') END $$`);
    await queryRunner.query(`ALTER TABLE "audit_events" ALTER COLUMN "id" SET DEFAULT rcflow_audit_next_id()`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "audit_events" ALTER COLUMN "id" SET DEFAULT nextval('audit_events_id_seq'::regclass)`);
    await queryRunner.query('DROP FUNCTION rcflow_audit_next_id()');
  }
}
