import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Enrolment tokens carry their scope: the existing device a token re-keys, or the collection the
 * new devices it creates join. Tokens from before have neither: they create new devices only.
 */
export class EnrolmentTokenScope1795620000000 implements MigrationInterface {
  name = 'EnrolmentTokenScope1795620000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "enrolment_tokens" ADD "device_id" uuid`);
    await queryRunner.query(`ALTER TABLE "enrolment_tokens" ADD "collection_id" uuid`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "enrolment_tokens" DROP COLUMN "collection_id"`);
    await queryRunner.query(`ALTER TABLE "enrolment_tokens" DROP COLUMN "device_id"`);
  }
}
