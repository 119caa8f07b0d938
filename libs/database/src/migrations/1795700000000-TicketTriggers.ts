import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Helpdesk ticket triggers: integrations (sealed secrets, mapping rules), their delivery log,
 * the notes owed to tickets, principals' ids in other systems, and devices' external ids.
 */
export class TicketTriggers1795700000000 implements MigrationInterface {
  name = 'TicketTriggers1795700000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TABLE "principal_identities" ("system" text NOT NULL, "external_id" text NOT NULL, "principal_id" uuid NOT NULL, CONSTRAINT "PK_e345f1beca0e8b29baccc982d52" PRIMARY KEY ("system", "external_id"))`,
    );
    await q.query(`CREATE INDEX "ix_principal_identities_principal" ON "principal_identities"  ("principal_id") `);
    await q.query(
      `CREATE TABLE "ticket_deliveries" ("id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL, "integration_id" uuid NOT NULL, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "delivery_key" text NOT NULL, "key_source" text NOT NULL, "first" boolean NOT NULL DEFAULT false, "event_type" text, "signature" text NOT NULL, "outcome" text NOT NULL, "rule" text, "ticket_ref" text, "device_id" uuid, "viewer_id" uuid, "session_id" uuid, "reason" text, "status_code" integer NOT NULL, CONSTRAINT "PK_358943f6b12ba6aeeb51f07a13c" PRIMARY KEY ("id"))`,
    );
    await q.query(
      `CREATE UNIQUE INDEX "uq_ticket_deliveries_first" ON "ticket_deliveries"  ("integration_id", "delivery_key") WHERE "first"`,
    );
    await q.query(`CREATE INDEX "ix_ticket_deliveries_integration" ON "ticket_deliveries"  ("integration_id", "id") `);
    await q.query(
      `CREATE TABLE "ticket_integrations" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "name" text NOT NULL, "kind" text NOT NULL, "principal_id" uuid NOT NULL, "inbound_auth" text NOT NULL DEFAULT 'hmac', "inbound_secrets_sealed" text NOT NULL, "outbound_url" text, "outbound_credentials_sealed" text, "rules" jsonb NOT NULL, "enabled" boolean NOT NULL DEFAULT true, CONSTRAINT "PK_e0de191fe8a1a9079aa5158129c" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE UNIQUE INDEX "uq_ticket_integrations_name_ci" ON "ticket_integrations" (lower("name"))`);
    await q.query(
      `CREATE TABLE "ticket_writebacks" ("id" uuid NOT NULL, "integration_id" uuid NOT NULL, "session_id" uuid NOT NULL, "ticket_ref" text NOT NULL, "outcome" text NOT NULL, "state" text NOT NULL DEFAULT 'pending', "attempts" integer NOT NULL DEFAULT '0', "last_error" text, "sent_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_1116c0426867a409f934792fa1f" PRIMARY KEY ("id"))`,
    );
    await q.query(`CREATE INDEX "ix_ticket_writebacks_integration" ON "ticket_writebacks"  ("integration_id", "state") `);
    await q.query(`CREATE UNIQUE INDEX "uq_ticket_writebacks_outcome" ON "ticket_writebacks"  ("session_id", "outcome") `);
    await q.query(`ALTER TABLE "devices" ADD "external_id" text`);
    await q.query(`CREATE UNIQUE INDEX "uq_devices_external_id" ON "devices"  ("external_id") WHERE "external_id" IS NOT NULL`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "public"."uq_devices_external_id"`);
    await q.query(`ALTER TABLE "devices" DROP COLUMN "external_id"`);
    await q.query(`DROP TABLE "ticket_writebacks"`);
    await q.query(`DROP TABLE "ticket_integrations"`);
    await q.query(`DROP TABLE "ticket_deliveries"`);
    await q.query(`DROP TABLE "principal_identities"`);
  }
}
