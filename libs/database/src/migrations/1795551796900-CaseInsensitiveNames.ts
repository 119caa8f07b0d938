import { MigrationInterface, QueryRunner } from 'typeorm';

/** Hostnames and the names of collections and settings sets are unique without regard to case, as Windows treats them. */
export class CaseInsensitiveNames1795551796900 implements MigrationInterface {
  name = 'CaseInsensitiveNames1795551796900';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE UNIQUE INDEX "uq_devices_hostname_ci" ON "devices" (lower("hostname"))`);
    await q.query(`CREATE UNIQUE INDEX "uq_collections_name_ci" ON "collections" (lower("name"))`);
    await q.query(`CREATE UNIQUE INDEX "uq_client_settings_name_ci" ON "client_settings" (lower("name"))`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "uq_client_settings_name_ci"`);
    await q.query(`DROP INDEX "uq_collections_name_ci"`);
    await q.query(`DROP INDEX "uq_devices_hostname_ci"`);
  }
}
