import fc from 'fast-check';
import {
  accessEntries,
  buildDirectory,
  deviceReach,
  reviewPrincipal,
  type AccessDirectory,
  type AccessEntry,
  type DirectoryAssignment,
  type DirectoryPrincipal,
} from './access-review';
import { DEFAULT_ELIGIBILITY_POLICY, STANDING_CHECK_IDS, evaluateEligibility } from './eligibility';
import { CONFIGMGR_DEFAULT_REMOTE_TOOLS, mergeSettings } from './settings';
import { ROLE_NAMES, SESSION_TYPES, type DeviceFacts, type EffectiveSettings, type RemoteToolsSettings } from './types';

const device = (overrides: Partial<DeviceFacts> = {}): DeviceFacts => ({
  id: 'dev-1',
  hostname: 'WS-1',
  enrolled: true,
  retired: false,
  domainJoined: true,
  osFamily: 'windows',
  osBuild: '10.0.19045',
  agentVersion: '1.2.0',
  // Presence is not part of the review: an offline device with nobody logged on is still reachable.
  lastHeartbeatAt: null,
  loggedOnUser: null,
  locked: false,
  localAdministrators: ['WS1\\admin', 'dave'],
  collectionIds: ['c-desks'],
  ...overrides,
});

const settings = (custom: Partial<RemoteToolsSettings> = {}, base: Partial<RemoteToolsSettings> = {}): EffectiveSettings =>
  mergeSettings([
    {
      id: 's-default',
      name: 'Default Client Settings',
      order: 10000,
      isDefault: true,
      remoteTools: { ...CONFIGMGR_DEFAULT_REMOTE_TOOLS, ...base },
    },
    { id: 's-desks', name: 'Desks RC', order: 5, isDefault: false, remoteTools: custom },
  ]);

const P = (id: string, kind: DirectoryPrincipal['kind'] = 'user', disabled = false): DirectoryPrincipal => ({
  id,
  name: id.toUpperCase(),
  kind,
  disabled,
});

/**
 * alice ∈ T1 ∈ HELPDESK (nested), HELPDESK holds the operator role on Desks and is a permitted viewer;
 * bob holds the role directly but is named nowhere; dave holds it and is a local administrator;
 * erin is in HELPDESK only through a disabled group; root is a full administrator everywhere.
 */
function world(): AccessDirectory {
  const principals = [
    P('alice'),
    P('bob'),
    P('dave'),
    P('erin'),
    P('root'),
    P('t1', 'group'),
    P('helpdesk', 'group'),
    P('old', 'group', true),
    P('svc', 'service'),
  ];
  const memberships = [
    { groupId: 't1', memberId: 'alice' },
    { groupId: 'helpdesk', memberId: 't1' },
    { groupId: 'old', memberId: 'erin' },
    { groupId: 'helpdesk', memberId: 'old' },
  ];
  const assignments: DirectoryAssignment[] = [
    { id: 'ra-helpdesk', principalId: 'helpdesk', role: 'remote_tools_operator', collectionIds: ['c-desks'] },
    { id: 'ra-bob', principalId: 'bob', role: 'remote_tools_operator', collectionIds: ['c-desks'] },
    { id: 'ra-dave', principalId: 'dave', role: 'remote_tools_operator', collectionIds: ['c-servers', 'c-desks'] },
    { id: 'ra-root', principalId: 'root', role: 'full_administrator', collectionIds: null },
    { id: 'ra-svc', principalId: 'svc', role: 'ticket_integration', collectionIds: null },
  ];
  return buildDirectory(principals, memberships, assignments, [
    { id: 'c-desks', name: 'Desks' },
    { id: 'c-servers', name: 'Servers' },
  ]);
}

function review(dir: AccessDirectory, dev: DeviceFacts, s: EffectiveSettings): AccessEntry[] {
  const reach = deviceReach(dev, s, DEFAULT_ELIGIBILITY_POLICY);
  return [...dir.principals.keys()].flatMap((id) => accessEntries(dev, s, reach, reviewPrincipal(dir, id)!, dir));
}
const summary = (entries: AccessEntry[]) => entries.map((e) => `${e.principal.name} ${e.sessionType} ${e.access}`).sort();

describe('access review', () => {
  const rcOnly = settings({ enabled: true, permittedViewers: ['HELPDESK'] });

  it('lists exactly the principals whose standing checks pass, with the highest access per type', () => {
    // dave is a local administrator (granted by the default set), alice a viewer through nested groups;
    // bob and root hold roles but are neither; erin's only way into HELPDESK is a disabled group; svc cannot control.
    expect(summary(review(world(), device(), rcOnly))).toEqual(['ALICE remote-control full', 'DAVE remote-control full']);
  });

  it('explains a permitted viewer reached through nested groups: assignment → collection → viewer entry → settings', () => {
    const alice = review(world(), device(), rcOnly).find((e) => e.principal.id === 'alice')!;
    expect(alice.via.map((s) => s.step)).toEqual(['role_assignment', 'collection', 'permitted_viewer', 'settings']);
    expect(alice.via[0]).toMatchObject({
      id: 'ra-helpdesk',
      role: 'remote_tools_operator',
      scope: [{ id: 'c-desks', name: 'Desks' }],
      heldBy: { id: 'helpdesk', name: 'HELPDESK', kind: 'group' },
      membership: ['ALICE', 'T1', 'HELPDESK'],
    });
    expect(alice.via[1]).toMatchObject({ id: 'c-desks', name: 'Desks' });
    expect(alice.via[2]).toMatchObject({
      entry: 'HELPDESK',
      group: 'HELPDESK',
      membership: ['ALICE', 'T1', 'HELPDESK'],
      setting: { key: 'permittedViewers', setId: 's-desks', setName: 'Desks RC' },
    });
    const s = alice.via[3];
    if (s.step !== 'settings') throw new Error('last step is the settings');
    expect(s.values.enabled).toEqual({ key: 'enabled', value: true, setId: 's-desks', setName: 'Desks RC', order: 5 });
    expect(s.values.accessLevel).toMatchObject({ value: 'full', setId: 's-default' });
    expect(s.sets.map((x) => x.id)).toEqual(['s-desks', 's-default']);
  });

  it('explains the local-administrator rule and drops it when the settings stop granting local administrators', () => {
    const dave = review(world(), device(), rcOnly).find((e) => e.principal.id === 'dave')!;
    expect(dave.via.map((s) => s.step)).toEqual(['role_assignment', 'collection', 'local_administrator', 'settings']);
    expect(dave.via[0]).toMatchObject({ id: 'ra-dave', scope: [{ name: 'Servers' }, { name: 'Desks' }], membership: ['DAVE'] });
    expect(dave.via.filter((s) => s.step === 'collection')).toHaveLength(1);
    expect(dave.via[2]).toMatchObject({
      entry: 'dave',
      setting: { key: 'allowLocalAdminToDoRemoteControl', value: true, setId: 's-default' },
    });

    const noAdmins = settings({ enabled: true, permittedViewers: ['HELPDESK'], allowLocalAdminToDoRemoteControl: false });
    expect(summary(review(world(), device(), noAdmins))).toEqual(['ALICE remote-control full']);
  });

  it('lists nobody for a type the settings forbid, and names why the device refuses it', () => {
    const off = settings({ enabled: false, permittedViewers: ['HELPDESK'] });
    expect(review(world(), device(), off)).toEqual([]);
    const reach = deviceReach(device(), off, DEFAULT_ELIGIBILITY_POLICY);
    expect(reach['remote-control']).toEqual({ access: null, blockedBy: [expect.stringContaining('remote control is not enabled')] });
    // Remote assistance is refused to a workgroup computer even with managed RA at full level.
    const ra = settings({ permittedViewers: ['HELPDESK'], manageSolicitedRA: true, remoteAssistanceLevel: 'full' });
    expect(summary(review(world(), device(), ra))).toEqual(['ALICE remote-assistance full', 'DAVE remote-assistance full']);
    expect(summary(review(world(), device({ domainJoined: false }), ra))).toEqual([]);
  });

  it('gives view access where the settings allow view only', () => {
    const view = settings({ enabled: true, accessLevel: 'view', permittedViewers: ['HELPDESK'], manageTS: true, enableTS: true });
    expect(summary(review(world(), device(), view))).toEqual([
      'ALICE remote-control view',
      'ALICE remote-desktop view',
      'DAVE remote-control view',
      'DAVE remote-desktop view',
    ]);
    expect(deviceReach(device(), view, DEFAULT_ELIGIBILITY_POLICY)['remote-control'].blockedBy).toEqual([
      expect.stringContaining('full access asked but access level allowed is view'),
    ]);
  });

  it('lists nobody on a retired device, nor a disabled principal, and gives a group no entry of its own', () => {
    expect(review(world(), device({ retired: true }), rcOnly)).toEqual([]);
    const dir = world();
    dir.principals.set('alice', { ...dir.principals.get('alice')!, disabled: true });
    expect(summary(review(dir, device(), rcOnly))).toEqual(['DAVE remote-control full']);
    // HELPDESK itself is a permitted viewer with the role, but a group cannot start a session.
    expect(review(world(), device(), rcOnly).some((e) => e.principal.kind === 'group')).toBe(false);
  });

  it('follows nested groups and stops at a disabled one, as the eligibility facts do', () => {
    const dir = world();
    expect(reviewPrincipal(dir, 'alice')!.facts.groupNames).toEqual(['T1', 'HELPDESK']);
    expect(reviewPrincipal(dir, 'erin')!.facts.groupNames).toEqual([]);
    dir.groupsOf.set('erin', ['old', 't1']);
    const erin = reviewPrincipal(dir, 'erin')!;
    expect(erin.facts.groupNames).toEqual(['T1', 'HELPDESK']);
    expect(erin.facts.grants).toEqual([{ role: 'remote_tools_operator', collectionIds: ['c-desks'] }]);
    // A membership cycle ends.
    dir.groupsOf.set('helpdesk', ['t1']);
    expect(reviewPrincipal(dir, 'alice')!.facts.groupNames).toEqual(['T1', 'HELPDESK']);
  });

  it('agrees with evaluateEligibility: an entry exactly when the six standing checks pass (random worlds)', () => {
    const names = ['alice', 'bob', 't1', 'helpdesk'];
    const arb = fc.record({
      kinds: fc.tuple(fc.constantFrom('user', 'service'), fc.constantFrom('user', 'service')),
      disabled: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      edges: fc.subarray([
        ['t1', 'alice'],
        ['helpdesk', 't1'],
        ['helpdesk', 'bob'],
        ['t1', 'helpdesk'],
      ]),
      roles: fc.array(
        fc.record({
          holder: fc.constantFrom(...names),
          role: fc.constantFrom(...ROLE_NAMES),
          scope: fc.option(fc.subarray(['c-desks', 'c-servers']), { nil: null }),
        }),
        { maxLength: 4 },
      ),
      dev: fc.record({
        enrolled: fc.boolean(),
        retired: fc.boolean(),
        domainJoined: fc.boolean(),
        osFamily: fc.constantFrom('windows', 'linux'),
        agentVersion: fc.constantFrom('1.2.0', '0.9.0', null),
        localAdministrators: fc.subarray(['ALICE', 'bob', 'x']),
        collectionIds: fc.subarray(['c-desks', 'c-servers']),
      }),
      rt: fc.record({
        enabled: fc.boolean(),
        allowLocalAdminToDoRemoteControl: fc.boolean(),
        accessLevel: fc.constantFrom('none', 'view', 'full'),
        permittedViewers: fc.subarray(['alice', 'HELPDESK', 't1', 'BOB']),
        manageSolicitedRA: fc.boolean(),
        manageUnsolicitedRA: fc.boolean(),
        remoteAssistanceLevel: fc.constantFrom('none', 'view', 'full'),
        manageTS: fc.boolean(),
        enableTS: fc.boolean(),
      }),
    });
    fc.assert(
      fc.property(arb, (w) => {
        const principals: DirectoryPrincipal[] = names.map((n, i) => ({
          id: n,
          name: n.toUpperCase(),
          kind: i < 2 ? w.kinds[i] : 'group',
          disabled: w.disabled[i],
        }));
        const dir = buildDirectory(
          principals,
          w.edges.map(([groupId, memberId]) => ({ groupId: groupId, memberId: memberId })),
          w.roles.map((r, i) => ({ id: `ra-${i}`, principalId: r.holder, role: r.role, collectionIds: r.scope })),
          [],
        );
        const dev = device(w.dev);
        const s = settings(w.rt);
        const reach = deviceReach(dev, s, DEFAULT_ELIGIBILITY_POLICY);
        for (const id of ['alice', 'bob']) {
          const who = reviewPrincipal(dir, id)!;
          const entries = accessEntries(dev, s, reach, who, dir);
          for (const type of SESSION_TYPES) {
            const standing = (access: 'view' | 'full') => {
              const d = evaluateEligibility({
                now: new Date(),
                device: dev,
                requester: who.facts,
                viewer: who.facts,
                ask: { type, access, reason: null, ticketRef: null, immediate: false },
                settings: s,
                controllingSessionIds: [],
                policy: DEFAULT_ELIGIBILITY_POLICY,
              });
              return d.checks.filter((c) => (STANDING_CHECK_IDS as readonly string[]).includes(c.id)).every((c) => c.passed);
            };
            const expected = standing('full') ? 'full' : standing('view') ? 'view' : null;
            const entry = entries.find((e) => e.sessionType === type);
            if ((entry?.access ?? null) !== expected) return false;
            if (entry && !entry.via.some((st) => st.step === 'role_assignment')) return false;
          }
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});
