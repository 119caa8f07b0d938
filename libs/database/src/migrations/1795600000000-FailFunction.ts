import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `rcflow_fail(message)` raises an error: a single statement that must not half-apply (a transition
 * whose audit head does not match) calls it to roll itself back. VOLATILE so the planner never
 * evaluates it ahead of the CASE that guards it.
 */
export class FailFunction1795600000000 implements MigrationInterface {
  name = 'FailFunction1795600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE FUNCTION rcflow_fail(message text) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
      BEGIN RAISE EXCEPTION '%', message USING ERRCODE = 'data_exception'; END $$`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP FUNCTION rcflow_fail(text)');
  }
}
