import { MigrationInterface, QueryRunner } from 'typeorm';

export class AgentChannel1795553106657 implements MigrationInterface {
  name = 'AgentChannel1795553106657';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "device_credentials" ("id" uuid NOT NULL, "device_id" uuid NOT NULL, "secret_hash" text NOT NULL, "enrolment_token_id" uuid, "revoked_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_96678b2954bc2c8d4d5be68f011" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_device_credentials_device" ON "device_credentials"  ("device_id") `);
    await queryRunner.query(
      `CREATE TABLE "enrolment_tokens" ("id" uuid NOT NULL, "secret_hash" text NOT NULL, "hostname" text, "max_uses" integer NOT NULL DEFAULT '1', "uses" integer NOT NULL DEFAULT '0', "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "revoked_at" TIMESTAMP WITH TIME ZONE, "created_by" uuid, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_1a77229ba9dd2d7b7e5355e8e95" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "viewer_tokens" ("id" uuid NOT NULL, "session_id" uuid NOT NULL, "secret_hash" text NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "used_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_65f7c90475ca915f9ac7f565a5b" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "ix_viewer_tokens_session" ON "viewer_tokens"  ("session_id") `);
    await queryRunner.query(`ALTER TABLE "sessions" ADD "connect_info" jsonb`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "connect_info"`);
    await queryRunner.query(`DROP INDEX "public"."ix_viewer_tokens_session"`);
    await queryRunner.query(`DROP TABLE "viewer_tokens"`);
    await queryRunner.query(`DROP TABLE "enrolment_tokens"`);
    await queryRunner.query(`DROP INDEX "public"."ix_device_credentials_device"`);
    await queryRunner.query(`DROP TABLE "device_credentials"`);
  }
}
