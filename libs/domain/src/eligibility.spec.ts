import { DEFAULT_ELIGIBILITY_POLICY, evaluateEligibility } from './eligibility';
import { CONFIGMGR_DEFAULT_REMOTE_TOOLS, mergeSettings } from './settings';
import {
  CHECK_IDS,
  type CheckId,
  type ConsentRule,
  type DeviceFacts,
  type EffectiveSettings,
  type EligibilityDecision,
  type EligibilityInput,
  type EligibilityPolicy,
  type PrincipalFacts,
  type RemoteToolsSettings,
  type SessionAsk,
  type SessionType,
} from './types';

const NOW = new Date('2025-03-01T12:00:00.000Z');
const secondsAgo = (s: number) => new Date(NOW.getTime() - s * 1000);

const baseDevice = (): DeviceFacts => ({
  id: 'dev-1',
  hostname: 'PC-001',
  enrolled: true,
  retired: false,
  domainJoined: true,
  osFamily: 'windows',
  osBuild: '10.0.19045',
  agentVersion: '1.2.0',
  lastHeartbeatAt: secondsAgo(10),
  loggedOnUser: 'carol',
  locked: false,
  localAdministrators: ['localadmin'],
  collectionIds: ['c-helpdesk'],
});

const principal = (overrides: Partial<PrincipalFacts> = {}): PrincipalFacts => ({
  id: 'p-alice',
  name: 'alice',
  kind: 'user',
  disabled: false,
  groupNames: ['HELPDESK'],
  grants: [{ role: 'remote_tools_operator', collectionIds: ['c-helpdesk'] }],
  ...overrides,
});

const settingsOf = (overrides: Partial<RemoteToolsSettings> = {}): EffectiveSettings =>
  mergeSettings([
    {
      id: 'default',
      name: 'Default Client Settings',
      order: 10000,
      isDefault: true,
      remoteTools: { ...CONFIGMGR_DEFAULT_REMOTE_TOOLS, enabled: true, permittedViewers: ['bob', 'HELPDESK'] },
    },
    { id: 'custom', name: 'Helpdesk', order: 1, isDefault: false, remoteTools: overrides },
  ]);

interface Overrides {
  now?: Date;
  device?: Partial<DeviceFacts> | null;
  requester?: Partial<PrincipalFacts>;
  /** Partial merges into the requester (same principal by default); null = unknown viewer. */
  viewer?: Partial<PrincipalFacts> | null;
  ask?: Partial<SessionAsk>;
  settings?: Partial<RemoteToolsSettings> | null;
  controllingSessionIds?: string[];
  policy?: EligibilityPolicy;
}

function inputOf(o: Overrides = {}): EligibilityInput {
  const requester = principal(o.requester);
  return {
    now: o.now ?? NOW,
    device: o.device === null ? null : { ...baseDevice(), ...o.device },
    requester,
    viewer: o.viewer === null ? null : o.viewer === undefined ? requester : principal(o.viewer),
    ask: { type: 'remote-control', access: 'full', reason: null, ticketRef: null, immediate: true, ...o.ask },
    settings: o.settings === null ? null : settingsOf(o.settings),
    controllingSessionIds: o.controllingSessionIds ?? [],
    policy: o.policy ?? DEFAULT_ELIGIBILITY_POLICY,
  };
}

const evaluate = (o: Overrides = {}) => evaluateEligibility(inputOf(o));
const checkOf = (d: EligibilityDecision, id: CheckId) => d.checks.find((c) => c.id === id)!;
const failing = (d: EligibilityDecision) => d.checks.filter((c) => !c.passed).map((c) => c.id);

/** Asserts that exactly `ids` fail and returns the detail of the first. */
function expectOnlyFailing(d: EligibilityDecision, ...ids: CheckId[]): string {
  expect(failing(d)).toEqual(ids);
  expect(d.eligible).toBe(ids.length === 0);
  return ids.length > 0 ? checkOf(d, ids[0]).detail : '';
}

function expectPassing(d: EligibilityDecision, id: CheckId): string {
  expect(checkOf(d, id).passed).toBe(true);
  return checkOf(d, id).detail;
}

// RA and RD fixtures that pass every check, so a test can break exactly one thing.
const RA_SETTINGS: Partial<RemoteToolsSettings> = { manageSolicitedRA: true, remoteAssistanceLevel: 'full' };
const RD_SETTINGS: Partial<RemoteToolsSettings> = { manageTS: true, enableTS: true };

describe('DEFAULT_ELIGIBILITY_POLICY', () => {
  it('holds the defaults', () => {
    expect(DEFAULT_ELIGIBILITY_POLICY).toEqual({
      presenceGraceSeconds: 90,
      requirements: {
        'remote-control': { minAgentVersion: '1.0.0', osFamilies: ['windows', 'linux', 'macos'], minOsBuild: null },
        'remote-assistance': { minAgentVersion: '1.0.0', osFamilies: ['windows'], minOsBuild: null },
        'remote-desktop': { minAgentVersion: '1.0.0', osFamilies: ['windows'], minOsBuild: null },
      },
    });
    expect(Object.isFrozen(DEFAULT_ELIGIBILITY_POLICY.requirements['remote-control'].osFamilies)).toBe(true);
  });
});

describe('evaluateEligibility: shape', () => {
  it('passes all ten checks for a well-formed request, in order 1..10', () => {
    const d = evaluate();
    expect(d.checks.map((c) => c.id)).toEqual([...CHECK_IDS]);
    expect(d.checks.map((c) => c.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(d.checks.every((c) => c.passed && c.detail.length > 0)).toBe(true);
    expect(d.eligible).toBe(true);
    expect(d.consentRule).toBe('prompt_user');
    expect(d.unattended).toBe(false);
  });

  it.each<[SessionType, Partial<RemoteToolsSettings>]>([
    ['remote-assistance', RA_SETTINGS],
    ['remote-desktop', RD_SETTINGS],
  ])('passes all ten checks for a well-formed %s request', (type, settings) => {
    expectOnlyFailing(evaluate({ ask: { type }, settings }));
  });

  it('keeps all ten checks when the device is unknown, device-dependent ones failing with "device unknown"', () => {
    const d = evaluate({ device: null, settings: null });
    expect(d.checks.map((c) => c.id)).toEqual([...CHECK_IDS]);
    expect(d.checks.map((c) => c.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const dependent = CHECK_IDS.filter((id) => id !== 'single_controller');
    expect(failing(d)).toEqual(dependent);
    for (const id of dependent) expect(checkOf(d, id).detail).toContain('device unknown');
    expect(checkOf(d, 'single_controller').passed).toBe(true);
    expect(d.eligible).toBe(false);
    expect(d.consentRule).toBe('refused');
    expect(d.unattended).toBe(true);
  });

  it('fails device-dependent checks for an unknown device even for a scheduled request', () => {
    const d = evaluate({ device: null, settings: null, ask: { immediate: false } });
    expect(checkOf(d, 'device_online').passed).toBe(false);
    expect(checkOf(d, 'device_online').detail).toContain('device unknown');
  });

  it('still names blocking sessions when the device is unknown', () => {
    const d = evaluate({ device: null, settings: null, controllingSessionIds: ['s-9'] });
    expect(checkOf(d, 'single_controller').passed).toBe(false);
    expect(checkOf(d, 'single_controller').detail).toContain('s-9');
  });

  it('never short-circuits: every failure is reported at once', () => {
    const d = evaluate({
      device: {
        enrolled: false,
        domainJoined: false,
        lastHeartbeatAt: null,
        loggedOnUser: null,
        agentVersion: '0.1.0',
        osFamily: 'linux',
      },
      requester: { disabled: true },
      viewer: null,
      ask: { type: 'remote-assistance', access: 'full' },
      settings: { allowRemCtrlToUnattended: false },
      controllingSessionIds: ['s-1'],
    });
    expect(failing(d)).toEqual([...CHECK_IDS]);
    expect(d.eligible).toBe(false);
  });

  it('is deterministic and does not mutate its input', () => {
    const input = inputOf({ controllingSessionIds: ['s-2', 's-1'] });
    const snapshot = JSON.stringify(input);
    expect(evaluateEligibility(input)).toEqual(evaluateEligibility(input));
    expect(JSON.stringify(input)).toBe(snapshot);
  });
});

describe('check 1 device_enrolled', () => {
  it('passes for an enrolled, active device', () => {
    expect(expectPassing(evaluate(), 'device_enrolled')).toBe('device PC-001 is enrolled and not retired');
  });

  it('fails for a device not enrolled', () => {
    const detail = expectOnlyFailing(evaluate({ device: { enrolled: false } }), 'device_enrolled');
    expect(detail).toBe('device PC-001 is not enrolled');
  });

  it('fails for a retired device', () => {
    const detail = expectOnlyFailing(evaluate({ device: { retired: true } }), 'device_enrolled');
    expect(detail).toBe('device PC-001 is retired');
  });

  it('names both causes when not enrolled and retired', () => {
    const detail = expectOnlyFailing(evaluate({ device: { enrolled: false, retired: true } }), 'device_enrolled');
    expect(detail).toBe('device PC-001 is not enrolled; device PC-001 is retired');
  });

  it('fails for an unknown device', () => {
    expect(checkOf(evaluate({ device: null, settings: null }), 'device_enrolled').detail).toBe('device unknown');
  });
});

describe('check 2 rbac_scope', () => {
  const bob = { id: 'p-bob', name: 'bob', groupNames: [] };

  it('passes when the requester is the viewer and holds request and control in scope', () => {
    expect(expectPassing(evaluate(), 'rbac_scope')).toBe(
      'requester alice may request sessions on device PC-001 and viewer alice may control it',
    );
  });

  it('passes with an unrestricted grant, even for a device in no collection', () => {
    const grants = [{ role: 'remote_tools_operator' as const, collectionIds: null }];
    expectOnlyFailing(evaluate({ requester: { grants }, device: { collectionIds: [] } }));
  });

  it('passes when one of several device collections is in scope', () => {
    const grants = [{ role: 'remote_tools_operator' as const, collectionIds: ['c-x', 'c-2'] }];
    expectOnlyFailing(evaluate({ requester: { grants }, device: { collectionIds: ['c-1', 'c-2'] } }));
  });

  it('fails when the requester is disabled', () => {
    const detail = expectOnlyFailing(evaluate({ requester: { disabled: true } }), 'rbac_scope');
    expect(detail).toContain('requester alice is disabled');
  });

  it('fails when the requester role lacks session.request', () => {
    const grants = [
      { role: 'read_only_auditor' as const, collectionIds: null },
      { role: 'remote_tools_operator' as const, collectionIds: ['c-other'] },
    ];
    const d = evaluate({ requester: { grants }, viewer: { ...bob } });
    expect(checkOf(d, 'rbac_scope').passed).toBe(false);
    expect(checkOf(d, 'rbac_scope').detail).toContain('requester alice holds no role with session.request over');
  });

  it('fails when the requester scope does not contain the device', () => {
    const grants = [{ role: 'remote_tools_operator' as const, collectionIds: ['c-other'] }];
    const d = evaluate({ requester: { grants } });
    const detail = expectOnlyFailing(d, 'rbac_scope');
    expect(detail).toContain('requester alice holds no role with session.request');
    expect(detail).toContain('PC-001');
    expect(detail).toContain('c-helpdesk');
  });

  it('fails for a device in no collection with a scoped grant', () => {
    const detail = expectOnlyFailing(evaluate({ device: { collectionIds: [] } }), 'rbac_scope');
    expect(detail).toContain('session.request');
  });

  it('fails when asking on behalf of another viewer without session.request_on_behalf', () => {
    const viewer = { ...bob, grants: [{ role: 'remote_tools_operator' as const, collectionIds: ['c-helpdesk'] }] };
    const detail = expectOnlyFailing(evaluate({ viewer, settings: { permittedViewers: ['bob'] } }), 'rbac_scope');
    expect(detail).toContain('session.request_on_behalf');
    expect(detail).toContain('viewer bob');
    expect(detail).not.toContain('holds no role with session.request over');
  });

  it('fails when session.request_on_behalf is held only outside the device scope', () => {
    const requester = {
      id: 'svc',
      name: 'servicenow',
      kind: 'service' as const,
      grants: [
        { role: 'remote_tools_operator' as const, collectionIds: ['c-helpdesk'] },
        { role: 'ticket_integration' as const, collectionIds: ['c-other'] },
      ],
    };
    const d = evaluate({ requester, viewer: { ...bob, groupNames: ['HELPDESK'] } });
    expect(expectOnlyFailing(d, 'rbac_scope')).toContain('session.request_on_behalf');
  });

  it('passes when a ticket integration asks on behalf of an operator', () => {
    const requester = {
      id: 'svc',
      name: 'servicenow',
      kind: 'service' as const,
      groupNames: [],
      grants: [{ role: 'ticket_integration' as const, collectionIds: ['c-helpdesk'] }],
    };
    const d = evaluate({ requester, viewer: { ...bob, groupNames: [] }, settings: { permittedViewers: ['BOB'] } });
    expectOnlyFailing(d);
    expect(checkOf(d, 'rbac_scope').detail).toBe(
      'requester servicenow may request sessions on device PC-001 on behalf of viewer bob and viewer bob may control it',
    );
  });

  it('fails when the viewer is unknown', () => {
    const d = evaluate({ viewer: null });
    expect(failing(d)).toEqual(['rbac_scope', 'permitted_viewer']);
    expect(checkOf(d, 'rbac_scope').detail).toContain('viewer unknown');
  });

  it('fails when the viewer is disabled', () => {
    const requester = { grants: [{ role: 'full_administrator' as const, collectionIds: null }] };
    const viewer = { ...bob, disabled: true, grants: [{ role: 'remote_tools_operator' as const, collectionIds: null }] };
    const d = evaluate({ requester, viewer, settings: { permittedViewers: ['bob'] } });
    expect(expectOnlyFailing(d, 'rbac_scope')).toContain('viewer bob is disabled');
  });

  it('fails when the viewer lacks session.control', () => {
    const requester = { grants: [{ role: 'full_administrator' as const, collectionIds: null }] };
    const viewer = { ...bob, grants: [{ role: 'read_only_auditor' as const, collectionIds: null }] };
    const d = evaluate({ requester, viewer, settings: { permittedViewers: ['bob'] } });
    expect(expectOnlyFailing(d, 'rbac_scope')).toContain('viewer bob holds no role with session.control');
  });

  it('fails when the viewer holds session.control only outside the device scope', () => {
    const requester = { grants: [{ role: 'full_administrator' as const, collectionIds: null }] };
    const viewer = { ...bob, grants: [{ role: 'remote_tools_operator' as const, collectionIds: ['c-other'] }] };
    const d = evaluate({ requester, viewer, settings: { permittedViewers: ['bob'] } });
    expect(expectOnlyFailing(d, 'rbac_scope')).toContain('session.control');
  });

  it('fails when a ticket integration names itself as the viewer (it cannot control)', () => {
    const requester = { grants: [{ role: 'ticket_integration' as const, collectionIds: null }] };
    const d = evaluate({ requester });
    expect(expectOnlyFailing(d, 'rbac_scope')).toContain('viewer alice holds no role with session.control');
  });

  it('fails with "device unknown" when the device is unknown', () => {
    expect(checkOf(evaluate({ device: null, settings: null }), 'rbac_scope').detail).toBe('device unknown');
  });

  it('names every cause it can establish without the device', () => {
    const d = evaluate({ device: null, settings: null, requester: { disabled: true }, viewer: null });
    expect(checkOf(d, 'rbac_scope').detail).toBe('device unknown; requester alice is disabled; viewer unknown');
  });
});

describe('check 3 permitted_viewer', () => {
  it('passes when the viewer is listed by name, case-insensitively', () => {
    const d = evaluate({ viewer: { groupNames: [] }, settings: { permittedViewers: ['ALICE'] } });
    expectOnlyFailing(d);
    expect(checkOf(d, 'permitted_viewer').detail).toContain('viewer alice is in permitted viewers [ALICE]');
  });

  it('passes when one of the viewer groups is listed, case-insensitively', () => {
    const d = evaluate({ viewer: { groupNames: ['Staff', 'helpdesk'] } });
    expectOnlyFailing(d);
    expect(checkOf(d, 'permitted_viewer').detail).toContain('through group helpdesk');
  });

  it('passes for one of several local administrators while local administrators are granted', () => {
    const d = evaluate({ viewer: { groupNames: [] }, device: { localAdministrators: ['localadmin', 'ALICE'] } });
    expectOnlyFailing(d);
    expect(checkOf(d, 'permitted_viewer').detail).toBe(
      'viewer alice is a local administrator of PC-001 and local administrators are granted remote control ' +
        '(set "Default Client Settings")',
    );
  });

  it('fails when neither listed nor a local administrator', () => {
    const d = evaluate({ viewer: { groupNames: [] } });
    expect(expectOnlyFailing(d, 'permitted_viewer')).toBe(
      'viewer alice is not in permitted viewers [bob, HELPDESK] and is not a local administrator of PC-001',
    );
  });

  it('names the viewer groups when none of them is listed', () => {
    const d = evaluate({ viewer: { groupNames: ['Staff'] } });
    const detail = expectOnlyFailing(d, 'permitted_viewer');
    expect(detail).toContain('[Staff]');
    expect(detail).toContain('not in permitted viewers [bob, HELPDESK]');
  });

  it('fails for one of several local administrators when local administrators are not granted', () => {
    const d = evaluate({
      viewer: { groupNames: [] },
      device: { localAdministrators: ['alice', 'localadmin'] },
      settings: { allowLocalAdminToDoRemoteControl: false },
    });
    expect(expectOnlyFailing(d, 'permitted_viewer')).toBe(
      'viewer alice is not in permitted viewers [bob, HELPDESK] and is a local administrator of PC-001 ' +
        'but local administrators are not granted remote control (set "Helpdesk")',
    );
  });

  it('fails with an empty permitted viewers list', () => {
    const d = evaluate({ settings: { permittedViewers: [] } });
    expect(expectOnlyFailing(d, 'permitted_viewer')).toContain('not in permitted viewers []');
  });

  it('does not treat "*" as a wildcard', () => {
    expect(expectOnlyFailing(evaluate({ settings: { permittedViewers: ['*'] } }), 'permitted_viewer')).toContain('[*]');
  });

  it('fails when the viewer is unknown', () => {
    expect(checkOf(evaluate({ viewer: null }), 'permitted_viewer').detail).toBe('viewer unknown');
  });

  it('fails when the device has no effective settings', () => {
    const d = evaluate({ settings: null });
    expect(checkOf(d, 'permitted_viewer').passed).toBe(false);
    expect(checkOf(d, 'permitted_viewer').detail).toBe('no effective settings for device PC-001');
  });

  it('fails with "device unknown" when the device is unknown', () => {
    expect(checkOf(evaluate({ device: null, settings: null }), 'permitted_viewer').detail).toBe('device unknown');
  });

  it('names every missing fact when the viewer is unknown too', () => {
    expect(checkOf(evaluate({ device: null, settings: null, viewer: null }), 'permitted_viewer').detail).toBe(
      'device unknown; viewer unknown',
    );
    expect(checkOf(evaluate({ settings: null, viewer: null }), 'permitted_viewer').detail).toBe(
      'no effective settings for device PC-001; viewer unknown',
    );
  });
});

describe('check 4 type_enabled', () => {
  describe('remote-control', () => {
    it('passes when remote control is enabled', () => {
      expect(expectPassing(evaluate(), 'type_enabled')).toContain('remote control is enabled');
    });

    it('fails when remote control is not enabled, naming the deciding set', () => {
      const detail = expectOnlyFailing(evaluate({ settings: { enabled: false } }), 'type_enabled');
      expect(detail).toContain('remote control is not enabled');
      expect(detail).toContain('set "Helpdesk"');
    });
  });

  describe('remote-assistance', () => {
    const ra = (settings: Partial<RemoteToolsSettings>, o: Overrides = {}) =>
      evaluate({ ...o, ask: { type: 'remote-assistance', ...o.ask }, settings: { ...RA_SETTINGS, ...settings } });

    it('does not require remote control to be enabled', () => {
      expectOnlyFailing(ra({ enabled: false }));
    });

    it.each([
      [{ manageSolicitedRA: true, manageUnsolicitedRA: false }],
      [{ manageSolicitedRA: false, manageUnsolicitedRA: true }],
      [{ manageSolicitedRA: true, manageUnsolicitedRA: true }],
    ])('passes with managed RA %j', (settings) => {
      expect(expectPassing(ra(settings), 'type_enabled')).toContain('remote assistance is managed');
    });

    it('fails when neither unsolicited nor solicited RA is managed', () => {
      const d = ra({ manageSolicitedRA: false, manageUnsolicitedRA: false });
      expect(expectOnlyFailing(d, 'type_enabled')).toContain('remote assistance is not managed');
    });

    it('fails when the RA level is none', () => {
      const d = ra({ remoteAssistanceLevel: 'none' });
      expect(expectOnlyFailing(d, 'type_enabled', 'access_level')).toContain('remote assistance level is none');
    });

    it('fails when the RA level is view and full access is asked', () => {
      const d = ra({ remoteAssistanceLevel: 'view' }, { ask: { access: 'full' } });
      expect(expectOnlyFailing(d, 'type_enabled', 'access_level')).toContain('remote assistance level view does not cover full access');
    });

    it('passes when the RA level is view and view access is asked', () => {
      expectOnlyFailing(ra({ remoteAssistanceLevel: 'view' }, { ask: { access: 'view' } }));
    });

    it('fails for a workgroup device', () => {
      const d = ra({}, { device: { domainJoined: false } });
      expect(expectOnlyFailing(d, 'type_enabled')).toContain('workgroup');
    });
  });

  describe('remote-desktop', () => {
    const rd = (settings: Partial<RemoteToolsSettings>) =>
      evaluate({ ask: { type: 'remote-desktop' }, settings: { ...RD_SETTINGS, ...settings } });

    it('passes with remote desktop managed and viewers allowed, even with remote control off', () => {
      expect(expectPassing(rd({ enabled: false }), 'type_enabled')).toContain('remote desktop is managed');
      expectOnlyFailing(rd({ enabled: false }));
    });

    it('fails when remote desktop is not managed', () => {
      expect(expectOnlyFailing(rd({ manageTS: false }), 'type_enabled')).toContain('remote desktop is not managed');
    });

    it('fails when permitted viewers may not use remote desktop', () => {
      expect(expectOnlyFailing(rd({ enableTS: false }), 'type_enabled')).toContain(
        'permitted viewers are not allowed to use remote desktop',
      );
    });
  });

  it('refuses a session type it does not know (input not checked against the union), naming it', () => {
    const d = evaluate({ ask: { type: 'remote-chat' as SessionType } });
    expect(expectOnlyFailing(d, 'type_enabled', 'agent_requirements')).toBe('unknown session type remote-chat');
  });

  it('fails when the device has no effective settings', () => {
    expect(checkOf(evaluate({ settings: null }), 'type_enabled').detail).toContain('no effective settings');
  });

  it('fails with "device unknown" when the device is unknown', () => {
    expect(checkOf(evaluate({ device: null, settings: null }), 'type_enabled').detail).toBe('device unknown');
  });
});

describe('check 5 access_level', () => {
  describe.each<[SessionType, Partial<RemoteToolsSettings>]>([
    ['remote-control', {}],
    ['remote-desktop', RD_SETTINGS],
  ])('%s compares with the access level allowed', (type, base) => {
    it.each([
      ['full', 'view', true],
      ['full', 'full', true],
      ['view', 'view', true],
      ['view', 'full', false],
      ['none', 'view', false],
      ['none', 'full', false],
    ] as const)('level %s, asked %s → passed %s', (level, access, passed) => {
      const d = evaluate({ ask: { type, access }, settings: { ...base, accessLevel: level } });
      if (passed) {
        expectOnlyFailing(d);
        expect(checkOf(d, 'access_level').detail).toBe(`${access} access is within access level allowed ${level}`);
      } else {
        expect(expectOnlyFailing(d, 'access_level')).toBe(
          level === 'none'
            ? 'access level allowed is none, which refuses all access (set "Helpdesk")'
            : 'full access asked but access level allowed is view (set "Helpdesk")',
        );
      }
    });
  });

  describe('remote-assistance compares with the remote assistance level, not the access level', () => {
    it.each([
      ['full', 'view', true],
      ['full', 'full', true],
      ['view', 'view', true],
      ['view', 'full', false],
      ['none', 'view', false],
      ['none', 'full', false],
    ] as const)('RA level %s, asked %s → passed %s', (level, access, passed) => {
      const d = evaluate({
        ask: { type: 'remote-assistance', access },
        settings: { ...RA_SETTINGS, remoteAssistanceLevel: level, accessLevel: 'none' },
      });
      expect(checkOf(d, 'access_level').passed).toBe(passed);
      expect(checkOf(d, 'access_level').detail).toBe(
        passed
          ? `${access} access is within remote assistance level ${level}`
          : level === 'none'
            ? 'remote assistance level is none, which refuses all access (set "Helpdesk")'
            : 'full access asked but remote assistance level is view (set "Helpdesk")',
      );
    });
  });

  it('names the set that decided a refusal', () => {
    expect(checkOf(evaluate({ settings: { accessLevel: 'none' } }), 'access_level').detail).toContain('set "Helpdesk"');
  });

  it('fails when the device has no effective settings', () => {
    expect(checkOf(evaluate({ settings: null }), 'access_level').detail).toContain('no effective settings');
  });

  it('fails with "device unknown" when the device is unknown', () => {
    expect(checkOf(evaluate({ device: null, settings: null }), 'access_level').detail).toBe('device unknown');
  });
});

describe('check 6 device_online', () => {
  it('passes for a recent heartbeat', () => {
    expect(expectPassing(evaluate(), 'device_online')).toBe('device PC-001 is online: last heartbeat 10s ago, within the 90s grace');
  });

  it('passes with a heartbeat exactly at the grace limit', () => {
    expectOnlyFailing(evaluate({ device: { lastHeartbeatAt: secondsAgo(90) } }));
  });

  it('fails with a heartbeat older than the grace', () => {
    const detail = expectOnlyFailing(evaluate({ device: { lastHeartbeatAt: secondsAgo(91) } }), 'device_online');
    expect(detail).toBe('device PC-001 is offline: last heartbeat 91s ago, more than the 90s grace');
  });

  it('fails when the device never sent a heartbeat', () => {
    const detail = expectOnlyFailing(evaluate({ device: { lastHeartbeatAt: null } }), 'device_online');
    expect(detail).toBe('device PC-001 has never sent a heartbeat');
  });

  it('uses the policy grace', () => {
    const policy = { ...DEFAULT_ELIGIBILITY_POLICY, presenceGraceSeconds: 5 };
    expect(checkOf(evaluate({ policy }), 'device_online').passed).toBe(false);
    expect(checkOf(evaluate({ policy }), 'device_online').detail).toContain('5s grace');
  });

  it('accepts a heartbeat slightly in the future (clock skew)', () => {
    expectOnlyFailing(evaluate({ device: { lastHeartbeatAt: new Date(NOW.getTime() + 2000) } }));
  });

  it.each([[null], [secondsAgo(100000)]])('passes a scheduled request whatever the heartbeat (%s)', (lastHeartbeatAt) => {
    const d = evaluate({ device: { lastHeartbeatAt }, ask: { immediate: false } });
    expectOnlyFailing(d);
    expect(checkOf(d, 'device_online').detail).toContain('checked again when due');
  });

  it('fails with "device unknown" when the device is unknown', () => {
    expect(checkOf(evaluate({ device: null, settings: null }), 'device_online').detail).toBe('device unknown');
  });
});

describe('check 7 user_presence', () => {
  it('an active user with the prompt on is asked for consent', () => {
    const d = evaluate({ settings: { permissionRequired: true } });
    expect(expectPassing(d, 'user_presence')).toContain('user carol is active');
    expect(checkOf(d, 'user_presence').detail).toContain('consent will be asked');
    expect(d.consentRule).toBe('prompt_user');
    expect(d.unattended).toBe(false);
  });

  it('an active user with the prompt off is not asked', () => {
    const d = evaluate({ settings: { permissionRequired: false } });
    expect(expectPassing(d, 'user_presence')).toContain('consent is not required');
    expect(d.consentRule).toBe('not_required');
  });

  it('remote assistance always asks an active user, even with the prompt off', () => {
    const d = evaluate({ ask: { type: 'remote-assistance' }, settings: { ...RA_SETTINGS, permissionRequired: false } });
    expect(expectPassing(d, 'user_presence')).toContain('remote assistance always asks');
    expect(d.consentRule).toBe('prompt_user');
  });

  it('no user logged on with unattended allowed passes', () => {
    const d = evaluate({ device: { loggedOnUser: null }, ask: { reason: 'patching' } });
    expect(expectPassing(d, 'user_presence')).toContain('no user is logged on');
    expect(d.consentRule).toBe('unattended_allowed');
    expect(d.unattended).toBe(true);
  });

  it('a locked screen with unattended allowed passes', () => {
    const d = evaluate({ device: { locked: true }, ask: { reason: 'patching' } });
    expect(expectPassing(d, 'user_presence')).toContain('screen of user carol is locked');
    expect(d.consentRule).toBe('unattended_allowed');
    expect(d.unattended).toBe(true);
  });

  it('no user logged on with unattended not allowed fails', () => {
    const d = evaluate({
      device: { loggedOnUser: null },
      ask: { reason: 'patching' },
      settings: { allowRemCtrlToUnattended: false },
    });
    const detail = expectOnlyFailing(d, 'user_presence');
    expect(detail).toContain('no user is logged on');
    expect(detail).toContain('unattended computer is not allowed');
    expect(d.consentRule).toBe('refused');
  });

  it('a locked screen with unattended not allowed fails', () => {
    const d = evaluate({
      device: { locked: true },
      ask: { ticketRef: 'INC-1' },
      settings: { allowRemCtrlToUnattended: false },
    });
    expect(expectOnlyFailing(d, 'user_presence')).toContain('locked');
    expect(d.consentRule).toBe('refused');
    expect(d.unattended).toBe(true);
  });

  it('refuses remote assistance with nobody to accept it, even with unattended allowed', () => {
    const d = evaluate({
      device: { loggedOnUser: null },
      ask: { type: 'remote-assistance', reason: 'r' },
      settings: { ...RA_SETTINGS, allowRemCtrlToUnattended: true },
    });
    expect(expectOnlyFailing(d, 'user_presence')).toContain('remote assistance needs a user present');
    expect(d.consentRule).toBe('refused');
  });

  it('fails and refuses when the device has no effective settings', () => {
    const d = evaluate({ settings: null });
    expect(checkOf(d, 'user_presence').detail).toContain('no effective settings');
    expect(d.consentRule).toBe('refused');
  });

  it('fails with "device unknown" when the device is unknown', () => {
    const d = evaluate({ device: null, settings: null });
    expect(checkOf(d, 'user_presence').detail).toBe('device unknown');
    expect(d.consentRule).toBe('refused');
  });

  // Every presence combination for every session type.
  const combos: [SessionType, string | null, boolean, boolean, boolean, ConsentRule, boolean][] = [];
  for (const type of ['remote-control', 'remote-assistance', 'remote-desktop'] as const) {
    for (const loggedOnUser of ['carol', null]) {
      for (const locked of [false, true]) {
        for (const allowUnattended of [true, false]) {
          for (const prompt of [true, false]) {
            const unattended = loggedOnUser === null || locked;
            const rule: ConsentRule = unattended
              ? allowUnattended && type !== 'remote-assistance'
                ? 'unattended_allowed'
                : 'refused'
              : prompt || type === 'remote-assistance'
                ? 'prompt_user'
                : 'not_required';
            combos.push([type, loggedOnUser, locked, allowUnattended, prompt, rule, rule !== 'refused']);
          }
        }
      }
    }
  }

  it('enumerates 48 combinations', () => {
    expect(combos).toHaveLength(48);
  });

  it.each(combos)(
    '%s, user %s, locked %s, allow unattended %s, prompt %s → %s (passed %s)',
    (type, loggedOnUser, locked, allowRemCtrlToUnattended, permissionRequired, rule, passed) => {
      const base = type === 'remote-assistance' ? RA_SETTINGS : type === 'remote-desktop' ? RD_SETTINGS : {};
      const d = evaluate({
        device: { loggedOnUser, locked },
        ask: { type, reason: 'r' },
        settings: { ...base, allowRemCtrlToUnattended, permissionRequired },
      });
      expect(d.consentRule).toBe(rule);
      expect(d.unattended).toBe(loggedOnUser === null || locked);
      expect(checkOf(d, 'user_presence').passed).toBe(passed);
      expect(failing(d)).toEqual(passed ? [] : ['user_presence']);
    },
  );
});

describe('check 8 single_controller', () => {
  it('passes when no other session holds the device', () => {
    expect(expectPassing(evaluate(), 'single_controller')).toBe('no other session controls device PC-001');
  });

  it('fails naming every blocking session', () => {
    const detail = expectOnlyFailing(evaluate({ controllingSessionIds: ['s-1', 's-2'] }), 'single_controller');
    expect(detail).toBe('device PC-001 is already held by controlling session(s) s-1, s-2');
  });

  it('speaks of "the device" when the device is unknown', () => {
    const unknown = (controllingSessionIds: string[]) =>
      checkOf(evaluate({ device: null, settings: null, controllingSessionIds }), 'single_controller').detail;
    expect(unknown([])).toBe('no other session controls the device');
    expect(unknown(['s-9'])).toBe('the device is already held by controlling session(s) s-9');
  });
});

describe('check 9 unattended_justification', () => {
  const unattended = (ask: Partial<SessionAsk>) => evaluate({ device: { loggedOnUser: null }, ask });

  it('passes for an attended session without reason or ticket', () => {
    expect(expectPassing(evaluate(), 'unattended_justification')).toContain('no justification needed');
  });

  it('fails for an unattended session without reason or ticket', () => {
    const detail = expectOnlyFailing(unattended({}), 'unattended_justification');
    expect(detail).toBe('unattended session needs a reason or a ticket reference and neither was given');
  });

  it('fails for a locked screen without reason or ticket', () => {
    expectOnlyFailing(evaluate({ device: { locked: true } }), 'unattended_justification');
  });

  it('fails when reason and ticket are blank', () => {
    const detail = expectOnlyFailing(unattended({ reason: '   ', ticketRef: '\t\n' }), 'unattended_justification');
    expect(detail).toContain('neither was given');
  });

  it('passes with a reason', () => {
    expect(expectPassing(unattended({ reason: ' reboot after patch ' }), 'unattended_justification')).toBe(
      'unattended session justified by reason "reboot after patch"',
    );
    expect(expectPassing(unattended({ reason: 'x', ticketRef: '  ' }), 'unattended_justification')).toBe(
      'unattended session justified by reason "x"',
    );
  });

  it('passes with a ticket reference', () => {
    expect(expectPassing(unattended({ ticketRef: ' INC-42 ' }), 'unattended_justification')).toBe(
      'unattended session justified by ticket INC-42',
    );
    expect(expectPassing(unattended({ reason: ' ', ticketRef: 'INC-42' }), 'unattended_justification')).toBe(
      'unattended session justified by ticket INC-42',
    );
  });

  it('names both when both are given', () => {
    const detail = expectPassing(unattended({ reason: 'x', ticketRef: 'INC-42' }), 'unattended_justification');
    expect(detail).toBe('unattended session justified by reason "x" and ticket INC-42');
  });

  it('is still checked when unattended control is refused', () => {
    const d = evaluate({ device: { loggedOnUser: null }, settings: { allowRemCtrlToUnattended: false } });
    expect(failing(d)).toEqual(['user_presence', 'unattended_justification']);
  });

  it('fails with "device unknown" when the device is unknown', () => {
    const d = evaluate({ device: null, settings: null, ask: { reason: 'x' } });
    expect(checkOf(d, 'unattended_justification').detail).toContain('device unknown');
  });
});

describe('check 10 agent_requirements', () => {
  const withRequirements = (type: SessionType, minAgentVersion: string, minOsBuild: string | null): EligibilityPolicy => ({
    ...DEFAULT_ELIGIBILITY_POLICY,
    requirements: {
      ...DEFAULT_ELIGIBILITY_POLICY.requirements,
      [type]: { ...DEFAULT_ELIGIBILITY_POLICY.requirements[type], minAgentVersion, minOsBuild },
    },
  });

  it('passes when agent and OS meet the minimums', () => {
    expect(expectPassing(evaluate(), 'agent_requirements')).toBe(
      'agent 1.2.0 on windows 10.0.19045 meets the requirements for remote control (agent ≥ 1.0.0)',
    );
  });

  it('passes remote control on linux and macOS', () => {
    expectOnlyFailing(evaluate({ device: { osFamily: 'linux', osBuild: '6.8.0' } }));
    expectOnlyFailing(evaluate({ device: { osFamily: 'macos', osBuild: '14.4' } }));
  });

  it.each([[null], [''], ['   ']])('fails when the agent version is unknown (%j)', (agentVersion) => {
    expect(expectOnlyFailing(evaluate({ device: { agentVersion } }), 'agent_requirements')).toBe('agent version unknown');
  });

  it('fails when the agent version is below the minimum', () => {
    const detail = expectOnlyFailing(evaluate({ device: { agentVersion: '0.9.9' } }), 'agent_requirements');
    expect(detail).toContain('agent version 0.9.9 is below the minimum 1.0.0');
  });

  it('compares numerically and ignores pre-release and build suffixes', () => {
    const policy = withRequirements('remote-control', '1.10.0', null);
    expect(checkOf(evaluate({ policy, device: { agentVersion: '1.9.0' } }), 'agent_requirements').passed).toBe(false);
    expectOnlyFailing(evaluate({ policy, device: { agentVersion: '1.10' } }));
    expectOnlyFailing(evaluate({ policy, device: { agentVersion: '1.10.0-beta.1' } }));
    expectOnlyFailing(evaluate({ policy, device: { agentVersion: '1.10.0+sha.abc' } }));
  });

  it('fails when the agent version is not a dotted numeric version', () => {
    expect(expectOnlyFailing(evaluate({ device: { agentVersion: 'latest' } }), 'agent_requirements')).toContain(
      'not a dotted numeric version',
    );
  });

  it('fails when the OS family is not supported for the type', () => {
    const d = evaluate({
      ask: { type: 'remote-assistance' },
      settings: RA_SETTINGS,
      device: { osFamily: 'linux', osBuild: '6.8' },
    });
    const detail = expectOnlyFailing(d, 'agent_requirements');
    expect(detail).toContain('OS family linux is not supported for remote assistance');
    expect(detail).toContain('[windows]');
  });

  it('fails for remote desktop on macOS', () => {
    const d = evaluate({ ask: { type: 'remote-desktop' }, settings: RD_SETTINGS, device: { osFamily: 'macos' } });
    expect(expectOnlyFailing(d, 'agent_requirements')).toContain('OS family macos');
  });

  it('fails when the OS build is below the minimum', () => {
    const policy = withRequirements('remote-control', '1.0.0', '10.0.19041');
    const detail = expectOnlyFailing(evaluate({ policy, device: { osBuild: '10.0.17763.5000' } }), 'agent_requirements');
    expect(detail).toContain('OS build 10.0.17763.5000 is below the minimum 10.0.19041');
  });

  it('passes with an OS build equal to or above the minimum', () => {
    const policy = withRequirements('remote-control', '1.0.0', '10.0.19041');
    expectOnlyFailing(evaluate({ policy, device: { osBuild: '10.0.19041' } }));
    expectOnlyFailing(evaluate({ policy, device: { osBuild: '10.0.22631.1' } }));
    expect(checkOf(evaluate({ policy }), 'agent_requirements').detail).toBe(
      'agent 1.2.0 on windows 10.0.19045 meets the requirements for remote control (agent ≥ 1.0.0, build ≥ 10.0.19041)',
    );
  });

  it('fails when the OS build cannot be compared with a minimum', () => {
    const policy = withRequirements('remote-control', '1.0.0', '10.0');
    expect(expectOnlyFailing(evaluate({ policy, device: { osBuild: 'Ventura' } }), 'agent_requirements')).toContain(
      'OS build Ventura is not a dotted numeric version',
    );
  });

  it('ignores the OS build when no minimum is set', () => {
    expectOnlyFailing(evaluate({ device: { osBuild: 'whatever' } }));
  });

  it('reports every unmet requirement together', () => {
    const policy = withRequirements('remote-assistance', '2.0', '10.0.22000');
    const d = evaluate({
      policy,
      ask: { type: 'remote-assistance' },
      settings: RA_SETTINGS,
      device: { agentVersion: '1.5', osFamily: 'linux', osBuild: '6.1' },
    });
    expect(expectOnlyFailing(d, 'agent_requirements')).toBe(
      'agent version 1.5 is below the minimum 2.0 for remote assistance; ' +
        'OS family linux is not supported for remote assistance (supported: [windows]); ' +
        'OS build 6.1 is below the minimum 10.0.22000 for remote assistance',
    );
  });

  it('fails when the policy defines no requirements for the asked type', () => {
    const policy: EligibilityPolicy = {
      ...DEFAULT_ELIGIBILITY_POLICY,
      requirements: {
        'remote-control': DEFAULT_ELIGIBILITY_POLICY.requirements['remote-control'],
      } as EligibilityPolicy['requirements'],
    };
    const d = evaluate({ policy, ask: { type: 'remote-desktop' }, settings: RD_SETTINGS });
    expect(expectOnlyFailing(d, 'agent_requirements')).toBe('no requirements defined for session type remote-desktop');
    expectOnlyFailing(evaluate({ policy }));
  });

  it('fails for a session type it does not know', () => {
    const d = evaluate({ ask: { type: 'remote-chat' as SessionType } });
    expect(checkOf(d, 'agent_requirements').detail).toBe('no requirements defined for session type remote-chat');
  });

  it('fails with "device unknown" when the device is unknown', () => {
    expect(checkOf(evaluate({ device: null, settings: null }), 'agent_requirements').detail).toBe('device unknown');
  });
});
