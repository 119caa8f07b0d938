import { MigrationInterface, QueryRunner } from 'typeorm';

export class SessionRequeues1795554095905 implements MigrationInterface {
  name = 'SessionRequeues1795554095905';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" ADD "requeues" integer NOT NULL DEFAULT '0'`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "requeues"`);
  }
}
