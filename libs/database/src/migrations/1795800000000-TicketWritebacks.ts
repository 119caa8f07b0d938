import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Write-back of ticket notes: the id the vendor's API takes for the ticket (kept per delivery), the
 * delivery of a session found by the session, and a note's re-drives and last attempt.
 */
export class TicketWritebacks1795800000000 implements MigrationInterface {
  name = 'TicketWritebacks1795800000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "ticket_deliveries" ADD "ticket_api_id" text`);
    await q.query(`CREATE INDEX "ix_ticket_deliveries_session" ON "ticket_deliveries" ("session_id") WHERE session_id IS NOT NULL`);
    await q.query(`ALTER TABLE "ticket_writebacks" ADD "redrive" integer NOT NULL DEFAULT '0'`);
    await q.query(`ALTER TABLE "ticket_writebacks" ADD "last_attempt_at" TIMESTAMP WITH TIME ZONE`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "ticket_writebacks" DROP COLUMN "last_attempt_at"`);
    await q.query(`ALTER TABLE "ticket_writebacks" DROP COLUMN "redrive"`);
    await q.query(`DROP INDEX "public"."ix_ticket_deliveries_session"`);
    await q.query(`ALTER TABLE "ticket_deliveries" DROP COLUMN "ticket_api_id"`);
  }
}
