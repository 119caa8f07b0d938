import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Recurring schedules and their occurrences (one row per schedule and time), what the user at a
 * device is told ahead of a booked session (reminders, pre-approval), and a session's origin in a
 * schedule and its booking's reminder.
 */
export class Schedules1796000000000 implements MigrationInterface {
  name = 'Schedules1796000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "schedules" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "name" text NOT NULL, "owner_id" uuid NOT NULL, "spec" jsonb NOT NULL, "device_ids" uuid array, "collection_id" uuid, "viewer_id" uuid, "type" text NOT NULL, "access" text NOT NULL, "reason" text, "ticket_ref" text, "remind_minutes" integer, "ask_approval" boolean NOT NULL DEFAULT false, "state" text NOT NULL DEFAULT 'active', "last_planned_at" TIMESTAMP WITH TIME ZONE, "next_at" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '1', CONSTRAINT "PK_7e33fc2ea755a5765e3564e66dd" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_schedules_owner" ON "schedules"  ("owner_id", "created_at") `);
    await queryRunner.query(`CREATE INDEX "ix_schedules_due" ON "schedules"  ("state", "next_at") `);
    await queryRunner.query(
      `CREATE TABLE "schedule_occurrences" ("schedule_id" uuid NOT NULL, "at" TIMESTAMP WITH TIME ZONE NOT NULL, "outcome" text NOT NULL, "reason" text, "targets" jsonb NOT NULL DEFAULT '[]', "decided_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_f6fa670ee1289c84cc733f4d941" PRIMARY KEY ("schedule_id", "at"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "session_notices" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "device_id" uuid NOT NULL, "session_id" uuid, "schedule_id" uuid, "occurrence_at" TIMESTAMP WITH TIME ZONE, "window_start" TIMESTAMP WITH TIME ZONE NOT NULL, "window_end" TIMESTAMP WITH TIME ZONE NOT NULL, "ask_approval" boolean NOT NULL DEFAULT false, "state" text NOT NULL DEFAULT 'planned', "approval" text NOT NULL DEFAULT 'not_asked', "answered_by" text, "answered_at" TIMESTAMP WITH TIME ZONE, "delivered_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_0a1c82d38c2716868df7871ddc7" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_session_notices_device" ON "session_notices"  ("device_id", "window_start") `);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_session_notices_occurrence" ON "session_notices"  ("schedule_id", "occurrence_at", "device_id") WHERE schedule_id IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_session_notices_session" ON "session_notices"  ("session_id") WHERE session_id IS NOT NULL`,
    );
    await queryRunner.query(`ALTER TABLE "sessions" ADD "schedule_id" uuid`);
    await queryRunner.query(`ALTER TABLE "sessions" ADD "occurrence_at" TIMESTAMP WITH TIME ZONE`);
    await queryRunner.query(`ALTER TABLE "sessions" ADD "remind_minutes" integer`);
    await queryRunner.query(`ALTER TABLE "sessions" ADD "ask_approval" boolean NOT NULL DEFAULT false`);
    await queryRunner.query(
      `CREATE INDEX "ix_sessions_occurrence" ON "sessions"  ("schedule_id", "occurrence_at") WHERE schedule_id IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_sessions_occurrence"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "ask_approval"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "remind_minutes"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "occurrence_at"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "schedule_id"`);
    await queryRunner.query(`DROP INDEX "public"."uq_session_notices_session"`);
    await queryRunner.query(`DROP INDEX "public"."uq_session_notices_occurrence"`);
    await queryRunner.query(`DROP INDEX "public"."ix_session_notices_device"`);
    await queryRunner.query(`DROP TABLE "session_notices"`);
    await queryRunner.query(`DROP TABLE "schedule_occurrences"`);
    await queryRunner.query(`DROP INDEX "public"."ix_schedules_due"`);
    await queryRunner.query(`DROP INDEX "public"."ix_schedules_owner"`);
    await queryRunner.query(`DROP TABLE "schedules"`);
  }
}
