import { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795551796619 implements MigrationInterface {
  name = 'Init1795551796619';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "api_keys" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "principal_id" uuid NOT NULL, "name" text NOT NULL, "secret_hash" text NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE, "revoked_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_5c8a79801b44bd27b79228e1dad" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_api_keys_principal" ON "api_keys"  ("principal_id") `);
    await queryRunner.query(
      `CREATE TABLE "audit_events" ("id" BIGSERIAL NOT NULL, "stream" text NOT NULL, "seq" integer NOT NULL, "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL, "actor_id" uuid, "actor_kind" text NOT NULL, "action" text NOT NULL, "outcome" text NOT NULL, "session_id" uuid, "device_id" uuid, "viewer_id" uuid, "ticket_ref" text, "reason" text, "data" jsonb NOT NULL, "prev_hash" text NOT NULL, "hash" text NOT NULL, CONSTRAINT "PK_910f64d901a5c3e9878f0d4a407" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_audit_session" ON "audit_events"  ("session_id", "seq") `);
    await queryRunner.query(`CREATE INDEX "ix_audit_actor" ON "audit_events"  ("actor_id", "occurred_at") `);
    await queryRunner.query(`CREATE INDEX "ix_audit_device" ON "audit_events"  ("device_id", "occurred_at") `);
    await queryRunner.query(`CREATE INDEX "ix_audit_viewer" ON "audit_events"  ("viewer_id", "occurred_at") `);
    await queryRunner.query(`CREATE INDEX "ix_audit_occurred" ON "audit_events"  ("occurred_at", "id") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_audit_stream_seq" ON "audit_events"  ("stream", "seq") `);
    await queryRunner.query(
      `CREATE TABLE "audit_stream_heads" ("stream" text NOT NULL, "seq" integer NOT NULL, "hash" text NOT NULL, CONSTRAINT "PK_c09d07b7b4d422fcc73562cc83f" PRIMARY KEY ("stream"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "client_settings" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "name" text NOT NULL, "is_default" boolean NOT NULL DEFAULT false, "priority" integer NOT NULL, "remote_tools" jsonb NOT NULL, CONSTRAINT "PK_69ec4c74e074907c807f8ab7d40" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_client_settings_default" ON "client_settings"  ("is_default") WHERE is_default`);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_client_settings_name" ON "client_settings"  ("name") `);
    await queryRunner.query(
      `CREATE TABLE "collections" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "name" text NOT NULL, "description" text, CONSTRAINT "PK_21c00b1ebbd41ba1354242c5c4e" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_collections_name" ON "collections"  ("name") `);
    await queryRunner.query(
      `CREATE TABLE "collection_members" ("collection_id" uuid NOT NULL, "device_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_47e190759a8659de1afea0655db" PRIMARY KEY ("collection_id", "device_id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_collection_members_device" ON "collection_members"  ("device_id") `);
    await queryRunner.query(
      `CREATE TABLE "devices" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "hostname" text NOT NULL, "fqdn" text, "domain_joined" boolean NOT NULL DEFAULT false, "domain" text, "os_family" text NOT NULL, "os_build" text NOT NULL DEFAULT '', "agent_version" text, "last_heartbeat_at" TIMESTAMP WITH TIME ZONE, "logged_on_user" text, "locked" boolean NOT NULL DEFAULT false, "local_administrators" text array NOT NULL DEFAULT '{}', "enrolled" boolean NOT NULL DEFAULT false, "retired" boolean NOT NULL DEFAULT false, "applied_settings_hash" text, CONSTRAINT "PK_b1514758245c12daf43486dd1f0" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_devices_hostname" ON "devices"  ("hostname") `);
    await queryRunner.query(
      `CREATE TABLE "eligibility_decisions" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "session_id" uuid NOT NULL, "eligible" boolean NOT NULL, "consent_rule" text NOT NULL, "checks" jsonb NOT NULL, "facts" jsonb NOT NULL, "evaluated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_0b9969542eee5e7b012634cf7ce" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_eligibility_decisions_session" ON "eligibility_decisions"  ("session_id", "evaluated_at") `);
    await queryRunner.query(
      `CREATE TABLE "group_members" ("group_id" uuid NOT NULL, "member_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_8946f8ffbdde443c5849b6060a3" PRIMARY KEY ("group_id", "member_id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_group_members_member" ON "group_members"  ("member_id") `);
    await queryRunner.query(
      `CREATE TABLE "idempotency_keys" ("principal_id" uuid NOT NULL, "key" text NOT NULL, "request_hash" text NOT NULL, "session_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_3df5494b04add5b16d8608a3876" PRIMARY KEY ("principal_id", "key"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "outbox" ("id" BIGSERIAL NOT NULL, "queue" text NOT NULL, "job_name" text NOT NULL, "job_id" text NOT NULL, "payload" jsonb NOT NULL, "attempts" integer NOT NULL DEFAULT '0', "available_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_340ab539f309f03bdaa14aa7649" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_outbox_available" ON "outbox"  ("available_at", "id") `);
    await queryRunner.query(
      `CREATE TABLE "principals" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "name" text NOT NULL, "kind" text NOT NULL, "display_name" text, "disabled" boolean NOT NULL DEFAULT false, CONSTRAINT "PK_58c7b420eb803e39d754963719c" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "role_assignments" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "principal_id" uuid NOT NULL, "role" text NOT NULL, "collection_ids" uuid array, CONSTRAINT "PK_fc2df9835ac1d2a34839f113783" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_role_assignments_principal" ON "role_assignments"  ("principal_id") `);
    await queryRunner.query(
      `CREATE TABLE "sessions" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "device_id" uuid NOT NULL, "viewer_id" uuid NOT NULL, "requester_id" uuid NOT NULL, "type" text NOT NULL, "access" text NOT NULL, "reason" text, "ticket_ref" text, "state" text NOT NULL, "state_changed_at" TIMESTAMP WITH TIME ZONE NOT NULL, "version" integer NOT NULL DEFAULT '1', "consent_rule" text, "settings_hash" text, "failure_cause" text, "started_at" TIMESTAMP WITH TIME ZONE, "ended_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_3238ef96f18b355b671619111bc" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_sessions_one_controller" ON "sessions"  ("device_id") WHERE state IN ('eligible','pushing_settings','awaiting_consent','active')`,
    );
    await queryRunner.query(`CREATE INDEX "ix_sessions_state" ON "sessions"  ("state", "state_changed_at") `);
    await queryRunner.query(`CREATE INDEX "ix_sessions_viewer" ON "sessions"  ("viewer_id", "created_at") `);
    await queryRunner.query(`CREATE INDEX "ix_sessions_device" ON "sessions"  ("device_id", "created_at") `);
    await queryRunner.query(`CREATE INDEX "ix_sessions_created" ON "sessions"  ("created_at", "id") `);
    await queryRunner.query(
      `CREATE TABLE "settings_deployments" ("settings_id" uuid NOT NULL, "collection_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_e7f99652160510121352a0a17d9" PRIMARY KEY ("settings_id", "collection_id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_settings_deployments_collection" ON "settings_deployments"  ("collection_id") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_settings_deployments_collection"`);
    await queryRunner.query(`DROP TABLE "settings_deployments"`);
    await queryRunner.query(`DROP INDEX "public"."ix_sessions_created"`);
    await queryRunner.query(`DROP INDEX "public"."ix_sessions_device"`);
    await queryRunner.query(`DROP INDEX "public"."ix_sessions_viewer"`);
    await queryRunner.query(`DROP INDEX "public"."ix_sessions_state"`);
    await queryRunner.query(`DROP INDEX "public"."uq_sessions_one_controller"`);
    await queryRunner.query(`DROP TABLE "sessions"`);
    await queryRunner.query(`DROP INDEX "public"."ix_role_assignments_principal"`);
    await queryRunner.query(`DROP TABLE "role_assignments"`);
    await queryRunner.query(`DROP TABLE "principals"`);
    await queryRunner.query(`DROP INDEX "public"."ix_outbox_available"`);
    await queryRunner.query(`DROP TABLE "outbox"`);
    await queryRunner.query(`DROP TABLE "idempotency_keys"`);
    await queryRunner.query(`DROP INDEX "public"."ix_group_members_member"`);
    await queryRunner.query(`DROP TABLE "group_members"`);
    await queryRunner.query(`DROP INDEX "public"."ix_eligibility_decisions_session"`);
    await queryRunner.query(`DROP TABLE "eligibility_decisions"`);
    await queryRunner.query(`DROP INDEX "public"."uq_devices_hostname"`);
    await queryRunner.query(`DROP TABLE "devices"`);
    await queryRunner.query(`DROP INDEX "public"."ix_collection_members_device"`);
    await queryRunner.query(`DROP TABLE "collection_members"`);
    await queryRunner.query(`DROP INDEX "public"."uq_collections_name"`);
    await queryRunner.query(`DROP TABLE "collections"`);
    await queryRunner.query(`DROP INDEX "public"."uq_client_settings_name"`);
    await queryRunner.query(`DROP INDEX "public"."uq_client_settings_default"`);
    await queryRunner.query(`DROP TABLE "client_settings"`);
    await queryRunner.query(`DROP TABLE "audit_stream_heads"`);
    await queryRunner.query(`DROP INDEX "public"."uq_audit_stream_seq"`);
    await queryRunner.query(`DROP INDEX "public"."ix_audit_occurred"`);
    await queryRunner.query(`DROP INDEX "public"."ix_audit_viewer"`);
    await queryRunner.query(`DROP INDEX "public"."ix_audit_device"`);
    await queryRunner.query(`DROP INDEX "public"."ix_audit_actor"`);
    await queryRunner.query(`DROP INDEX "public"."ix_audit_session"`);
    await queryRunner.query(`DROP TABLE "audit_events"`);
    await queryRunner.query(`DROP INDEX "public"."ix_api_keys_principal"`);
    await queryRunner.query(`DROP TABLE "api_keys"`);
  }
}
