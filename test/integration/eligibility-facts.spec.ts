import { DataSource } from 'typeorm';
import { createDataSource, loadEligibilityInput, loadPrincipalFacts } from '../../libs/database/src';
import { DEFAULT_ELIGIBILITY_POLICY, EligibilityInput, evaluateEligibility } from '../../libs/domain/src';
import { freshDatabase } from '../support/env';
import { seedWorld } from '../support/fixtures';
import { tearDown } from '../support/teardown';

/**
 * Authority never flows through a disabled principal: a disabled group gives its members (direct
 * or nested through it) neither its name for the permitted-viewers match nor its role grants.
 */
describe('eligibility facts of principals in disabled groups (PostgreSQL)', () => {
  let ds: DataSource;

  beforeAll(async () => {
    ds = createDataSource({ url: await freshDatabase('elig_facts'), pgliteDir: '', poolSize: 2 });
    await ds.initialize();
  });
  afterAll(() => tearDown({ database: () => ds?.isInitialized && ds.destroy() }));

  /**
   * carol is in TEAM, TEAM is in HELPDESK. HELPDESK is the permitted viewer and holds the operator
   * role over the device's collection; TEAM holds a read-only role over it. carol holds nothing herself.
   */
  const world = async () => {
    const w = await seedWorld(ds);
    const principal = async (name: string, kind: string) =>
      (await ds.query(`INSERT INTO principals (name, kind) VALUES ($1, $2) RETURNING id`, [name, kind]))[0].id as string;
    const suffix = w.viewerName.slice('alice-'.length);
    const carol = await principal(`carol-${suffix}`, 'user');
    const team = await principal(`TEAM-${suffix}`, 'group');
    const helpdesk = await principal(`HELPDESK-${suffix}`, 'group');
    await ds.query(`INSERT INTO group_members (group_id, member_id) VALUES ($1, $2), ($3, $1)`, [team, carol, helpdesk]);
    await ds.query(
      `INSERT INTO role_assignments (principal_id, role, collection_ids) VALUES ($1, 'remote_tools_operator', $3), ($2, 'read_only_auditor', $3)`,
      [helpdesk, team, [w.collectionId]],
    );
    await ds.query(
      `UPDATE client_settings SET remote_tools = remote_tools || jsonb_build_object('permittedViewers', jsonb_build_array($1::text)) WHERE name = $2`,
      [`HELPDESK-${suffix}`, `rc-on-${suffix}`],
    );
    const disable = (id: string) => ds.query(`UPDATE principals SET disabled = true WHERE id = $1`, [id]);
    return { ...w, carol, team, helpdesk, teamName: `TEAM-${suffix}`, helpdeskName: `HELPDESK-${suffix}`, disable };
  };

  const decide = async (carol: string, deviceId: string) => {
    const input = (await loadEligibilityInput(ds.manager, {
      deviceId,
      requesterId: carol,
      viewerId: carol,
      ask: { type: 'remote-control', access: 'full', reason: null, ticketRef: null, immediate: true },
      sessionId: null,
      now: new Date(),
      policy: DEFAULT_ELIGIBILITY_POLICY,
    })) as EligibilityInput;
    const checks = Object.fromEntries(evaluateEligibility(input).checks.map((c) => [c.id, c.passed]));
    return { permittedViewer: checks.permitted_viewer, rbacScope: checks.rbac_scope };
  };

  it('gives a member the names and grants of its enabled groups, nested ones included', async () => {
    const w = await world();
    const facts = await loadPrincipalFacts(ds.manager, w.carol);
    expect([...facts!.groupNames].sort()).toEqual([w.helpdeskName, w.teamName].sort());
    expect(facts!.grants.map((g) => g.role).sort()).toEqual(['read_only_auditor', 'remote_tools_operator']);
    expect(await decide(w.carol, w.deviceId)).toEqual({ permittedViewer: true, rbacScope: true });
  });

  it('takes away a disabled group: its name and its grants', async () => {
    const w = await world();
    await w.disable(w.helpdesk);
    const facts = await loadPrincipalFacts(ds.manager, w.carol);
    expect(facts!.groupNames).toEqual([w.teamName]);
    expect(facts!.grants.map((g) => g.role)).toEqual(['read_only_auditor']);
    expect(await decide(w.carol, w.deviceId)).toEqual({ permittedViewer: false, rbacScope: false });
  });

  it('takes away every group reached only through a disabled group', async () => {
    const w = await world();
    await w.disable(w.team);
    const facts = await loadPrincipalFacts(ds.manager, w.carol);
    expect(facts).toMatchObject({ groupNames: [], grants: [] });
    expect(await decide(w.carol, w.deviceId)).toEqual({ permittedViewer: false, rbacScope: false });
  });

  it('keeps a group reached another way than through the disabled one', async () => {
    const w = await world();
    await ds.query(`INSERT INTO group_members (group_id, member_id) VALUES ($1, $2)`, [w.helpdesk, w.carol]);
    await w.disable(w.team);
    const facts = await loadPrincipalFacts(ds.manager, w.carol);
    expect(facts).toMatchObject({
      groupNames: [w.helpdeskName],
      grants: [{ role: 'remote_tools_operator', collectionIds: [w.collectionId] }],
    });
    expect(await decide(w.carol, w.deviceId)).toEqual({ permittedViewer: true, rbacScope: true });
  });
});
