import { hasPermission } from './rbac';
import { CHECK_IDS } from './types';
import type {
  AccessMode,
  CheckId,
  CheckResult,
  ConsentRule,
  DeviceFacts,
  EffectiveSettings,
  EligibilityDecision,
  EligibilityInput,
  EligibilityPolicy,
  PrincipalFacts,
  RemoteToolsSettingKey,
  SessionAsk,
  SessionType,
} from './types';
import { compareVersions, parseVersion } from './version';

/** Default presence grace and per-type agent/OS requirements. Frozen: copy before changing. */
export const DEFAULT_ELIGIBILITY_POLICY: EligibilityPolicy = Object.freeze({
  presenceGraceSeconds: 90,
  requirements: Object.freeze({
    'remote-control': Object.freeze({
      minAgentVersion: '1.0.0',
      osFamilies: Object.freeze(['windows', 'linux', 'macos']) as unknown as ['windows', 'linux', 'macos'],
      minOsBuild: null,
    }),
    'remote-assistance': Object.freeze({
      minAgentVersion: '1.0.0',
      osFamilies: Object.freeze(['windows']) as unknown as ['windows'],
      minOsBuild: null,
    }),
    'remote-desktop': Object.freeze({
      minAgentVersion: '1.0.0',
      osFamilies: Object.freeze(['windows']) as unknown as ['windows'],
      minOsBuild: null,
    }),
  }),
});

const DEVICE_UNKNOWN = 'device unknown';
const TYPE_LABEL: Record<SessionType, string> = {
  'remote-control': 'remote control',
  'remote-assistance': 'remote assistance',
  'remote-desktop': 'remote desktop',
};

/** A check's verdict and the sentence that explains it. */
export interface Outcome {
  passed: boolean;
  detail: string;
}

const pass = (detail: string): Outcome => ({ passed: true, detail });
const fail = (detail: string): Outcome => ({ passed: false, detail });
/** One outcome from every reason found: failing when any reason is present. */
const fromReasons = (reasons: string[], passDetail: string): Outcome => (reasons.length > 0 ? fail(reasons.join('; ')) : pass(passDetail));

const list = (items: readonly string[]): string => `[${items.join(', ')}]`;
const sameName = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
const sourceOf = (settings: EffectiveSettings, key: RemoteToolsSettingKey): string => `set "${settings.provenance[key].setName}"`;

/** Access levels that allow each asked access ('none' allows nothing). */
function levelCovers(level: 'none' | 'view' | 'full', access: AccessMode): boolean {
  return level === 'full' || (level === 'view' && access === 'view');
}

function checkDeviceEnrolled(device: DeviceFacts | null): Outcome {
  if (!device) return fail(DEVICE_UNKNOWN);
  const reasons: string[] = [];
  if (!device.enrolled) reasons.push(`device ${device.hostname} is not enrolled`);
  if (device.retired) reasons.push(`device ${device.hostname} is retired`);
  return fromReasons(reasons, `device ${device.hostname} is enrolled and not retired`);
}

function checkRbacScope(input: Pick<EligibilityInput, 'device' | 'requester' | 'viewer'>): Outcome {
  const { device, requester, viewer } = input;
  const reasons: string[] = [];
  if (!device) reasons.push(DEVICE_UNKNOWN);
  if (requester.disabled) reasons.push(`requester ${requester.name} is disabled`);
  if (!viewer) reasons.push('viewer unknown');
  else if (viewer.disabled) reasons.push(`viewer ${viewer.name} is disabled`);
  if (!device) return fail(reasons.join('; '));

  const where = `a collection containing device ${device.hostname} ${list(device.collectionIds)}`;
  if (!hasPermission(requester.grants, 'session.request', device.collectionIds)) {
    reasons.push(`requester ${requester.name} holds no role with session.request over ${where}`);
  }
  const onBehalf = viewer !== null && viewer.id !== requester.id;
  if (onBehalf && !hasPermission(requester.grants, 'session.request_on_behalf', device.collectionIds)) {
    reasons.push(
      `requester ${requester.name} holds no role with session.request_on_behalf over ${where} ` +
        `and so may not ask for viewer ${viewer.name}`,
    );
  }
  if (viewer && !hasPermission(viewer.grants, 'session.control', device.collectionIds)) {
    reasons.push(`viewer ${viewer.name} holds no role with session.control over ${where}`);
  }
  return fromReasons(
    reasons,
    `requester ${requester.name} may request sessions on device ${device.hostname}` +
      (onBehalf ? ` on behalf of viewer ${viewer.name}` : '') +
      ` and viewer ${viewer?.name} may control it`,
  );
}

/**
 * How a viewer qualifies under check 3 (permitted viewer), or null when it does not: its own name
 * in permitted viewers, else the first of its groups found there, else the local-administrator rule
 * (a local administrator of the device while the settings grant local administrators remote
 * control). Names compare without regard to case. The one rule of check 3, shared with the access
 * review.
 */
export type ViewerGround =
  { kind: 'permitted_viewer'; entry: string; group: string | null } | { kind: 'local_administrator'; entry: string };

export function permittedViewerGround(device: DeviceFacts, viewer: PrincipalFacts, settings: EffectiveSettings): ViewerGround | null {
  const permitted = settings.values.permittedViewers;
  const own = permitted.find((p) => sameName(p, viewer.name));
  if (own !== undefined) return { kind: 'permitted_viewer', entry: own, group: null };
  for (const g of viewer.groupNames) {
    const entry = permitted.find((p) => sameName(p, g));
    if (entry !== undefined) return { kind: 'permitted_viewer', entry, group: g };
  }
  const admin = device.localAdministrators.find((a) => sameName(a, viewer.name));
  if (admin !== undefined && settings.values.allowLocalAdminToDoRemoteControl) return { kind: 'local_administrator', entry: admin };
  return null;
}

function checkPermittedViewer(device: DeviceFacts | null, viewer: PrincipalFacts | null, settings: EffectiveSettings | null): Outcome {
  const reasons: string[] = [];
  if (!device) reasons.push(DEVICE_UNKNOWN);
  else if (!settings) reasons.push(`no effective settings for device ${device.hostname}`);
  if (!viewer) reasons.push('viewer unknown');
  if (!device || !settings || !viewer) return fail(reasons.join('; '));

  const permitted = settings.values.permittedViewers;
  const ground = permittedViewerGround(device, viewer, settings);
  if (ground?.kind === 'permitted_viewer' && ground.group === null) {
    return pass(`viewer ${viewer.name} is in permitted viewers ${list(permitted)}`);
  }
  if (ground?.kind === 'permitted_viewer') {
    return pass(`viewer ${viewer.name} is permitted through group ${ground.group} in permitted viewers ${list(permitted)}`);
  }
  if (ground?.kind === 'local_administrator') {
    return pass(
      `viewer ${viewer.name} is a local administrator of ${device.hostname} and local administrators ` +
        `are granted remote control (${sourceOf(settings, 'allowLocalAdminToDoRemoteControl')})`,
    );
  }
  const isLocalAdmin = device.localAdministrators.some((a) => sameName(a, viewer.name));
  const groups = viewer.groupNames.length > 0 ? ` (nor is any of its groups ${list(viewer.groupNames)})` : '';
  const admin = isLocalAdmin
    ? `is a local administrator of ${device.hostname} but local administrators are not granted remote control ` +
      `(${sourceOf(settings, 'allowLocalAdminToDoRemoteControl')})`
    : `is not a local administrator of ${device.hostname}`;
  return fail(`viewer ${viewer.name} is not in permitted viewers ${list(permitted)}${groups} and ${admin}`);
}

function checkTypeEnabled(device: DeviceFacts | null, settings: EffectiveSettings | null, ask: SessionAsk): Outcome {
  if (!device) return fail(DEVICE_UNKNOWN);
  if (!settings) return fail(`no effective settings for device ${device.hostname}`);
  const v = settings.values;
  const reasons: string[] = [];
  switch (ask.type) {
    case 'remote-control':
      if (!v.enabled) reasons.push(`remote control is not enabled (${sourceOf(settings, 'enabled')})`);
      return fromReasons(reasons, `remote control is enabled (${sourceOf(settings, 'enabled')})`);
    case 'remote-assistance':
      if (!v.manageUnsolicitedRA && !v.manageSolicitedRA) {
        reasons.push('remote assistance is not managed (neither unsolicited nor solicited)');
      }
      if (v.remoteAssistanceLevel === 'none') {
        reasons.push(`remote assistance level is none (${sourceOf(settings, 'remoteAssistanceLevel')})`);
      } else if (!levelCovers(v.remoteAssistanceLevel, ask.access)) {
        reasons.push(`remote assistance level ${v.remoteAssistanceLevel} does not cover ${ask.access} access`);
      }
      if (!device.domainJoined) {
        reasons.push(`device ${device.hostname} is a workgroup computer and cannot be offered remote assistance`);
      }
      return fromReasons(
        reasons,
        `remote assistance is managed with level ${v.remoteAssistanceLevel} and device ${device.hostname} is domain-joined`,
      );
    case 'remote-desktop':
      if (!v.manageTS) reasons.push(`remote desktop is not managed (${sourceOf(settings, 'manageTS')})`);
      if (!v.enableTS) {
        reasons.push(`permitted viewers are not allowed to use remote desktop (${sourceOf(settings, 'enableTS')})`);
      }
      return fromReasons(reasons, 'remote desktop is managed and permitted viewers may use it');
    default:
      return fail(`unknown session type ${String(ask.type)}`);
  }
}

function checkAccessLevel(device: DeviceFacts | null, settings: EffectiveSettings | null, ask: SessionAsk): Outcome {
  if (!device) return fail(DEVICE_UNKNOWN);
  if (!settings) return fail(`no effective settings for device ${device.hostname}`);
  const key: RemoteToolsSettingKey = ask.type === 'remote-assistance' ? 'remoteAssistanceLevel' : 'accessLevel';
  const level = settings.values[key];
  const what = ask.type === 'remote-assistance' ? 'remote assistance level' : 'access level allowed';
  if (level === 'none') {
    return fail(`${what} is none, which refuses all access (${sourceOf(settings, key)})`);
  }
  return levelCovers(level, ask.access)
    ? pass(`${ask.access} access is within ${what} ${level}`)
    : fail(`${ask.access} access asked but ${what} is ${level} (${sourceOf(settings, key)})`);
}

function checkDeviceOnline(input: EligibilityInput): Outcome {
  const { device, ask, now, policy } = input;
  if (!device) return fail(DEVICE_UNKNOWN);
  if (!ask.immediate) return pass('not an immediate request: presence is checked again when due');
  if (!device.lastHeartbeatAt) return fail(`device ${device.hostname} has never sent a heartbeat`);
  const ageSeconds = (now.getTime() - device.lastHeartbeatAt.getTime()) / 1000;
  // A heartbeat stamped slightly in the future (clock skew) still proves presence.
  return ageSeconds <= policy.presenceGraceSeconds
    ? pass(
        `device ${device.hostname} is online: last heartbeat ${Math.max(0, Math.round(ageSeconds))}s ago, ` +
          `within the ${policy.presenceGraceSeconds}s grace`,
      )
    : fail(
        `device ${device.hostname} is offline: last heartbeat ${Math.round(ageSeconds)}s ago, ` +
          `more than the ${policy.presenceGraceSeconds}s grace`,
      );
}

function checkUserPresence(
  device: DeviceFacts | null,
  settings: EffectiveSettings | null,
  ask: SessionAsk,
): Outcome & { consentRule: ConsentRule; unattended: boolean } {
  // Without a device nobody can be shown to be present, so it counts as unattended and refused.
  if (!device) return { ...fail(DEVICE_UNKNOWN), consentRule: 'refused', unattended: true };
  const unattended = device.loggedOnUser === null || device.locked;
  const who = device.loggedOnUser === null ? 'no user is logged on' : `the screen of user ${device.loggedOnUser} is locked`;
  if (!settings) {
    return {
      ...fail(`no effective settings for device ${device.hostname}`),
      consentRule: 'refused',
      unattended,
    };
  }
  const v = settings.values;
  if (unattended && ask.type === 'remote-assistance') {
    // Remote assistance is an invitation the user accepts; with nobody at the screen it cannot start.
    return { ...fail(`${who}; remote assistance needs a user present to accept it`), consentRule: 'refused', unattended };
  }
  if (unattended) {
    return v.allowRemCtrlToUnattended
      ? {
          ...pass(`${who} and remote control of an unattended computer is allowed (${sourceOf(settings, 'allowRemCtrlToUnattended')})`),
          consentRule: 'unattended_allowed',
          unattended,
        }
      : {
          ...fail(`${who} and remote control of an unattended computer is not allowed (${sourceOf(settings, 'allowRemCtrlToUnattended')})`),
          consentRule: 'refused',
          unattended,
        };
  }
  const user = `user ${device.loggedOnUser} is active`;
  if (ask.type === 'remote-assistance') {
    return { ...pass(`${user}; remote assistance always asks for consent`), consentRule: 'prompt_user', unattended };
  }
  return v.permissionRequired
    ? {
        ...pass(`${user}; consent will be asked (prompt for permission is on, ${sourceOf(settings, 'permissionRequired')})`),
        consentRule: 'prompt_user',
        unattended,
      }
    : {
        ...pass(`${user}; consent is not required (prompt for permission is off, ${sourceOf(settings, 'permissionRequired')})`),
        consentRule: 'not_required',
        unattended,
      };
}

function checkSingleController(device: DeviceFacts | null, controllingSessionIds: string[]): Outcome {
  // Depends only on the sessions found holding the device, so it is evaluated even for an unknown device.
  const name = device ? `device ${device.hostname}` : 'the device';
  return controllingSessionIds.length === 0
    ? pass(`no other session controls ${name}`)
    : fail(`${name} is already held by controlling session(s) ${controllingSessionIds.join(', ')}`);
}

function checkUnattendedJustification(device: DeviceFacts | null, unattended: boolean, ask: SessionAsk): Outcome {
  if (!device) return fail(`${DEVICE_UNKNOWN}: presence cannot be established`);
  if (!unattended) return pass('a user is active at the device; no justification needed');
  const reason = ask.reason?.trim() ?? '';
  const ticket = ask.ticketRef?.trim() ?? '';
  if (reason === '' && ticket === '') {
    return fail('unattended session needs a reason or a ticket reference and neither was given');
  }
  const given = [reason !== '' ? `reason "${reason}"` : '', ticket !== '' ? `ticket ${ticket}` : ''].filter(Boolean).join(' and ');
  return pass(`unattended session justified by ${given}`);
}

function checkAgentRequirements(device: DeviceFacts | null, ask: SessionAsk, policy: EligibilityPolicy): Outcome {
  if (!device) return fail(DEVICE_UNKNOWN);
  // A policy read from configuration may lack a type the SessionType union names.
  const req = policy.requirements[ask.type] as EligibilityPolicy['requirements'][SessionType] | undefined;
  if (!req) return fail(`no requirements defined for session type ${ask.type}`);
  const type = TYPE_LABEL[ask.type];
  const reasons: string[] = [];
  if (device.agentVersion === null || device.agentVersion.trim() === '') {
    reasons.push('agent version unknown');
  } else if (!parseVersion(device.agentVersion)) {
    reasons.push(`agent version ${device.agentVersion} is not a dotted numeric version`);
  } else if (compareVersions(device.agentVersion, req.minAgentVersion) < 0) {
    reasons.push(`agent version ${device.agentVersion} is below the minimum ${req.minAgentVersion} for ${type}`);
  }
  if (!req.osFamilies.includes(device.osFamily)) {
    reasons.push(`OS family ${device.osFamily} is not supported for ${type} (supported: ${list(req.osFamilies)})`);
  }
  if (req.minOsBuild !== null) {
    if (!parseVersion(device.osBuild)) {
      reasons.push(`OS build ${device.osBuild} is not a dotted numeric version`);
    } else if (compareVersions(device.osBuild, req.minOsBuild) < 0) {
      reasons.push(`OS build ${device.osBuild} is below the minimum ${req.minOsBuild} for ${type}`);
    }
  }
  return fromReasons(
    reasons,
    `agent ${device.agentVersion} on ${device.osFamily} ${device.osBuild} meets the requirements for ${type} ` +
      `(agent ≥ ${req.minAgentVersion}` +
      (req.minOsBuild !== null ? `, build ≥ ${req.minOsBuild}` : '') +
      ')',
  );
}

/**
 * The checks whose outcome stands whatever the moment and the request's wording: they depend on the
 * device's record, its effective settings, the viewer (its grants, groups and name) and the type
 * and access asked, not on presence (online, logged-on user, lock), other sessions or the reason.
 * "Who can reach a device" (the access review) is these six passing.
 */
export const STANDING_CHECK_IDS = [
  'device_enrolled',
  'rbac_scope',
  'permitted_viewer',
  'type_enabled',
  'access_level',
  'agent_requirements',
] as const satisfies readonly CheckId[];
export type StandingCheckId = (typeof STANDING_CHECK_IDS)[number];
/** The checks the access review leaves out: they depend on the moment (presence, other sessions) or the request's reason. */
export const MOMENT_CHECK_IDS = CHECK_IDS.filter((id) => !(STANDING_CHECK_IDS as readonly CheckId[]).includes(id));

/** The standing checks that depend on the device and the ask only (the same for every viewer). */
export type DeviceStandingOutcomes = Record<'device_enrolled' | 'type_enabled' | 'access_level' | 'agent_requirements', Outcome>;
/** The standing checks that depend on the viewer (the same for every type and access asked). */
export type ViewerStandingOutcomes = Record<'rbac_scope' | 'permitted_viewer', Outcome>;

/** Checks 1, 4, 5 and 10 of `evaluateEligibility`, the same functions. */
export function deviceStandingChecks(
  device: DeviceFacts | null,
  settings: EffectiveSettings | null,
  ask: SessionAsk,
  policy: EligibilityPolicy,
): DeviceStandingOutcomes {
  return {
    device_enrolled: checkDeviceEnrolled(device),
    type_enabled: checkTypeEnabled(device, settings, ask),
    access_level: checkAccessLevel(device, settings, ask),
    agent_requirements: checkAgentRequirements(device, ask, policy),
  };
}

/** Checks 2 and 3 of `evaluateEligibility`, the same functions. */
export function viewerStandingChecks(
  input: Pick<EligibilityInput, 'device' | 'requester' | 'viewer' | 'settings'>,
): ViewerStandingOutcomes {
  return {
    rbac_scope: checkRbacScope(input),
    permitted_viewer: checkPermittedViewer(input.device, input.viewer, input.settings),
  };
}

/**
 * Runs all ten eligibility checks of DESIGN.md, never stopping at the first failure, and returns
 * each outcome with a sentence saying why. With an unknown device, every check that needs the
 * device fails with "device unknown", the session counts as unattended and consent as refused.
 */
export function evaluateEligibility(input: EligibilityInput): EligibilityDecision {
  const { device, settings, ask } = input;
  const presence = checkUserPresence(device, settings, ask);
  const outcomes: Record<CheckId, Outcome> = {
    ...deviceStandingChecks(device, settings, ask, input.policy),
    ...viewerStandingChecks(input),
    device_online: checkDeviceOnline(input),
    user_presence: { passed: presence.passed, detail: presence.detail },
    single_controller: checkSingleController(device, input.controllingSessionIds),
    unattended_justification: checkUnattendedJustification(device, presence.unattended, ask),
  };
  const checks: CheckResult[] = CHECK_IDS.map((id, index) => ({ id, number: index + 1, ...outcomes[id] }));
  return {
    eligible: checks.every((check) => check.passed),
    checks,
    consentRule: presence.consentRule,
    unattended: presence.unattended,
  };
}
