import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One-off scheduled sessions: the earliest and latest start of a session booked ahead, and the time
 * an outbox row's job is due (BullMQ holds it delayed until then).
 */
export class ScheduledSessions1795900000000 implements MigrationInterface {
  name = 'ScheduledSessions1795900000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "sessions" ADD "not_before" TIMESTAMP WITH TIME ZONE`);
    await q.query(`ALTER TABLE "sessions" ADD "not_after" TIMESTAMP WITH TIME ZONE`);
    await q.query(`ALTER TABLE "outbox" ADD "run_at" TIMESTAMP WITH TIME ZONE`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "outbox" DROP COLUMN "run_at"`);
    await q.query(`ALTER TABLE "sessions" DROP COLUMN "not_after"`);
    await q.query(`ALTER TABLE "sessions" DROP COLUMN "not_before"`);
  }
}
