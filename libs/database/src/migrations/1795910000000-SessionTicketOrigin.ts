import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A ticket-triggered session carries, from its intake, the integration that asked for it and the
 * id the vendor's API takes for the ticket: the note its outcome owes is found from the session
 * alone, never from a delivery-log line that may commit after the session moved on. A note being
 * sent is claimed with a lease, so no transaction is held while the ticket system answers.
 */
export class SessionTicketOrigin1795910000000 implements MigrationInterface {
  name = 'SessionTicketOrigin1795910000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "sessions" ADD "ticket_integration_id" uuid`);
    await q.query(`ALTER TABLE "sessions" ADD "ticket_api_id" text`);
    await q.query(`ALTER TABLE "ticket_writebacks" ADD "lease_until" TIMESTAMP WITH TIME ZONE`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "ticket_writebacks" DROP COLUMN "lease_until"`);
    await q.query(`ALTER TABLE "sessions" DROP COLUMN "ticket_api_id"`);
    await q.query(`ALTER TABLE "sessions" DROP COLUMN "ticket_integration_id"`);
  }
}
