import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Outbound webhooks: subscriptions (secret sealed), the deliveries the dispatcher fans out of the
 * audit trail (one per subscription and event), every attempt of each, and the dispatcher's
 * cursor over the audit trail (one row).
 */
export class Webhooks1796400000000 implements MigrationInterface {
  name = 'Webhooks1796400000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TABLE "webhook_subscriptions" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "url" text NOT NULL, "event_types" text array NOT NULL, "collection_id" uuid, "enabled" boolean NOT NULL DEFAULT true, "description" text, "secret_sealed" text NOT NULL, "previous_secret_sealed" text, "previous_secret_until" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_webhook_subscriptions" PRIMARY KEY ("id"))`,
    );
    await q.query(
      `CREATE TABLE "webhook_deliveries" ("id" uuid NOT NULL, "subscription_id" uuid NOT NULL, "event_id" bigint, "event_type" text NOT NULL, "body" text NOT NULL, "state" text NOT NULL DEFAULT 'pending', "attempts" integer NOT NULL DEFAULT '0', "cycle" integer NOT NULL DEFAULT '0', "next_attempt_at" TIMESTAMP WITH TIME ZONE, "lease_until" TIMESTAMP WITH TIME ZONE, "last_status" integer, "last_error" text, "delivered_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_webhook_deliveries" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE UNIQUE INDEX "uq_webhook_deliveries_event" ON "webhook_deliveries" ("subscription_id", "event_id") `);
    await q.query(`CREATE INDEX "ix_webhook_deliveries_subscription" ON "webhook_deliveries" ("subscription_id", "created_at", "id") `);
    await q.query(`CREATE INDEX "ix_webhook_deliveries_pending" ON "webhook_deliveries" ("next_attempt_at") WHERE state = 'pending'`);
    await q.query(
      `CREATE TABLE "webhook_delivery_attempts" ("id" BIGSERIAL NOT NULL, "delivery_id" uuid NOT NULL, "cycle" integer NOT NULL, "attempt" integer NOT NULL, "at" TIMESTAMP WITH TIME ZONE NOT NULL, "duration_ms" integer NOT NULL, "status_code" integer, "error" text, "response_excerpt" text, CONSTRAINT "PK_webhook_delivery_attempts" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "ix_webhook_attempts_delivery" ON "webhook_delivery_attempts" ("delivery_id", "id") `);
    await q.query(
      `CREATE TABLE "webhook_cursor" ("id" smallint NOT NULL, "position" jsonb NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_webhook_cursor" PRIMARY KEY ("id"))`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "webhook_cursor"`);
    await q.query(`DROP INDEX "public"."ix_webhook_attempts_delivery"`);
    await q.query(`DROP TABLE "webhook_delivery_attempts"`);
    await q.query(`DROP INDEX "public"."ix_webhook_deliveries_pending"`);
    await q.query(`DROP INDEX "public"."ix_webhook_deliveries_subscription"`);
    await q.query(`DROP INDEX "public"."uq_webhook_deliveries_event"`);
    await q.query(`DROP TABLE "webhook_deliveries"`);
    await q.query(`DROP TABLE "webhook_subscriptions"`);
  }
}
