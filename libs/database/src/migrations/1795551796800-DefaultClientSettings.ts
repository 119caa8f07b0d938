import { MigrationInterface, QueryRunner } from 'typeorm';

/** The default client settings every device gets, with ConfigMgr's remote-tools defaults. */
export class DefaultClientSettings1795551796800 implements MigrationInterface {
  name = 'DefaultClientSettings1795551796800';

  public async up(q: QueryRunner): Promise<void> {
    const remoteTools = {
      enabled: false,
      firewallExceptionProfiles: [],
      allowClientChange: false,
      allowRemCtrlToUnattended: true,
      permissionRequired: true,
      clipboardPermissionRequired: true,
      allowLocalAdminToDoRemoteControl: true,
      accessLevel: 'full',
      permittedViewers: [],
      remCtrlTaskbarIcon: true,
      remCtrlConnectionBar: true,
      audibleSignal: 'begin_end',
      manageUnsolicitedRA: false,
      manageSolicitedRA: false,
      remoteAssistanceLevel: 'none',
      manageTS: false,
      enableTS: false,
      tsUserAuthentication: false,
    };
    await q.query(
      `INSERT INTO client_settings (name, is_default, priority, remote_tools) VALUES ('Default Client Settings', true, 10000, $1)`,
      [JSON.stringify(remoteTools)],
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM client_settings WHERE is_default`);
  }
}
