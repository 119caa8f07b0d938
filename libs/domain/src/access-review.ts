import { deviceStandingChecks, permittedViewerGround, viewerStandingChecks, type DeviceStandingOutcomes } from './eligibility';
import { hasPermission } from './rbac';
import { SESSION_TYPES } from './types';
import type {
  AccessMode,
  DeviceFacts,
  EffectiveSettings,
  EligibilityPolicy,
  PrincipalFacts,
  RemoteToolsSettingKey,
  RoleName,
  SessionType,
} from './types';

/*
 * "Who can reach a device, and through which grant": the standing eligibility checks
 * (STANDING_CHECK_IDS: the same functions evaluateEligibility runs) decide; this module only
 * gathers the facts for many principals and devices at once and explains a pass as a chain.
 */

/** A principal as the directory lists it. */
export interface DirectoryPrincipal {
  id: string;
  name: string;
  kind: PrincipalFacts['kind'];
  disabled: boolean;
}

/** A role assignment with its id and holder (a principal or a group). */
export interface DirectoryAssignment {
  id: string;
  principalId: string;
  role: RoleName;
  /** null = every collection. */
  collectionIds: string[] | null;
}

/** Everything about principals the review needs, loaded once per request. */
export interface AccessDirectory {
  principals: Map<string, DirectoryPrincipal>;
  /** Direct group memberships: member id → ids of the groups it is in. */
  groupsOf: Map<string, string[]>;
  assignmentsOf: Map<string, DirectoryAssignment[]>;
  collectionNames: Map<string, string>;
}

export function buildDirectory(
  principals: DirectoryPrincipal[],
  memberships: { groupId: string; memberId: string }[],
  assignments: DirectoryAssignment[],
  collections: { id: string; name: string }[],
): AccessDirectory {
  const groupsOf = new Map<string, string[]>();
  for (const m of memberships) {
    const list = groupsOf.get(m.memberId);
    if (list) list.push(m.groupId);
    else groupsOf.set(m.memberId, [m.groupId]);
  }
  const assignmentsOf = new Map<string, DirectoryAssignment[]>();
  for (const a of assignments) {
    const list = assignmentsOf.get(a.principalId);
    if (list) list.push(a);
    else assignmentsOf.set(a.principalId, [a]);
  }
  return {
    principals: new Map(principals.map((p) => [p.id, p])),
    groupsOf,
    assignmentsOf,
    collectionNames: new Map(collections.map((c) => [c.id, c.name])),
  };
}

/** A principal with its groups (nested, each with the membership path to it) and every assignment that applies to it. */
export interface ReviewPrincipal {
  principal: DirectoryPrincipal;
  /** The same facts loadPrincipalFacts reads from the database, nearest groups first. */
  facts: PrincipalFacts;
  /** Group name (lower case) → the names from the principal to that group, both ends included. */
  membershipPaths: Map<string, string[]>;
  assignments: { assignment: DirectoryAssignment; holder: DirectoryPrincipal; membership: string[] }[];
}

/**
 * The principal's groups followed through nested memberships, as the eligibility facts' SQL does:
 * a disabled group passes nothing on (neither its name and grants nor the groups it is in), and a
 * group reached another way through enabled groups still counts. Breadth first, so each group's
 * path is a shortest one.
 */
export function reviewPrincipal(dir: AccessDirectory, id: string): ReviewPrincipal | null {
  const principal = dir.principals.get(id);
  if (!principal) return null;
  const path = new Map<string, string[]>([[id, [principal.name]]]);
  const order: DirectoryPrincipal[] = [];
  let frontier = [id];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const member of frontier) {
      for (const groupId of dir.groupsOf.get(member) ?? []) {
        const group = dir.principals.get(groupId);
        if (!group || group.disabled || path.has(groupId)) continue;
        path.set(groupId, [...path.get(member)!, group.name]);
        order.push(group);
        next.push(groupId);
      }
    }
    frontier = next;
  }
  const membershipPaths = new Map<string, string[]>();
  for (const g of order) membershipPaths.set(g.name.toLowerCase(), path.get(g.id)!);
  const assignments: ReviewPrincipal['assignments'] = [];
  for (const holder of [principal, ...order]) {
    for (const assignment of dir.assignmentsOf.get(holder.id) ?? []) {
      assignments.push({ assignment, holder, membership: path.get(holder.id)! });
    }
  }
  return {
    principal,
    facts: {
      id: principal.id,
      name: principal.name,
      kind: principal.kind,
      disabled: principal.disabled,
      groupNames: order.map((g) => g.name),
      grants: assignments.map(({ assignment: a }) => ({ role: a.role, collectionIds: a.collectionIds })),
    },
    membershipPaths,
    assignments,
  };
}

/** One link of the chain that grants an access. */
export type ChainStep =
  | {
      step: 'role_assignment';
      id: string;
      role: RoleName;
      /** null = every collection. */
      scope: { id: string; name: string | null }[] | null;
      /** Who holds the assignment: the principal itself or one of its groups. */
      heldBy: { id: string; name: string; kind: PrincipalFacts['kind'] };
      /** Names from the principal to the holder (one name when held directly). */
      membership: string[];
      detail: string;
    }
  | { step: 'collection'; id: string | null; name: string | null; detail: string }
  | {
      step: 'permitted_viewer';
      /** The entry of permitted viewers, as written in the settings. */
      entry: string;
      /** The group through which the entry matches; null when it names the principal itself. */
      group: string | null;
      membership: string[];
      setting: SettingSource;
      detail: string;
    }
  | { step: 'local_administrator'; entry: string; setting: SettingSource; detail: string }
  | {
      step: 'settings';
      /** The values that allow the session type and access, each with the set that supplied it. */
      values: Partial<Record<RemoteToolsSettingKey, SettingSource>>;
      sets: { id: string; name: string; order: number }[];
      detail: string;
    };

/** A setting's value with its provenance, as GET /v1/devices/:id/effective-settings gives it. */
export interface SettingSource {
  key: RemoteToolsSettingKey;
  value: unknown;
  setId: string;
  setName: string;
  order: number;
}

export interface AccessEntry {
  principal: { id: string; name: string; kind: PrincipalFacts['kind'] };
  sessionType: SessionType;
  /** The highest access the principal can ask for: full includes view. */
  access: AccessMode;
  via: ChainStep[];
}

/** The settings each session type needs, besides the viewer's ground (checks 4 and 5). */
export const TYPE_SETTING_KEYS: Readonly<Record<SessionType, readonly RemoteToolsSettingKey[]>> = Object.freeze({
  'remote-control': ['enabled', 'accessLevel'],
  'remote-assistance': ['manageUnsolicitedRA', 'manageSolicitedRA', 'remoteAssistanceLevel'],
  'remote-desktop': ['manageTS', 'enableTS', 'accessLevel'],
});

/** Per session type: the highest access the device and its settings allow anyone, and why not more. */
export type DeviceReach = Record<SessionType, { access: AccessMode | null; blockedBy: string[] }>;

const ASKS_HIGHEST_FIRST: AccessMode[] = ['full', 'view'];

/**
 * Checks 1, 4, 5 and 10 for every session type and access on one device: what no viewer can get
 * past. `blockedBy` holds the failing details of the lowest access (view) when nothing passes, or
 * of full access when only view passes.
 */
export function deviceReach(device: DeviceFacts, settings: EffectiveSettings, policy: EligibilityPolicy): DeviceReach {
  const out = {} as DeviceReach;
  for (const type of SESSION_TYPES) {
    let access: AccessMode | null = null;
    let blockedBy: string[] = [];
    for (const mode of ASKS_HIGHEST_FIRST) {
      const outcomes = deviceStandingChecks(
        device,
        settings,
        { type, access: mode, reason: null, ticketRef: null, immediate: false },
        policy,
      );
      const failing = failingDetails(outcomes);
      if (failing.length === 0) {
        access = mode;
        break;
      }
      blockedBy = failing;
    }
    out[type] = { access, blockedBy: access === 'full' ? [] : blockedBy };
  }
  return out;
}

function failingDetails(outcomes: DeviceStandingOutcomes): string[] {
  return Object.values(outcomes)
    .filter((o) => !o.passed)
    .map((o) => o.detail);
}

/**
 * Whether the principal passes checks 2 and 3 on the device as its own viewer (the requester
 * asking for itself, as every viewer that starts a session from its own key does).
 */
export function viewerPasses(device: DeviceFacts, settings: EffectiveSettings, who: ReviewPrincipal): boolean {
  const v = viewerStandingChecks({ device, requester: who.facts, viewer: who.facts, settings });
  return v.rbac_scope.passed && v.permitted_viewer.passed;
}

const source = (settings: EffectiveSettings, key: RemoteToolsSettingKey): SettingSource => ({
  key,
  value: settings.values[key],
  ...settings.provenance[key],
});

/**
 * The entries of one principal on one device: for each session type it can start (every standing
 * check passes), the highest access and the chain that grants it. Empty when it can start none.
 * Groups cannot start sessions (intake refuses a group as viewer), so a group principal gets none.
 */
export function accessEntries(
  device: DeviceFacts,
  settings: EffectiveSettings,
  reach: DeviceReach,
  who: ReviewPrincipal,
  dir: AccessDirectory,
): AccessEntry[] {
  if (who.principal.kind === 'group') return [];
  if (!SESSION_TYPES.some((t) => reach[t].access !== null)) return [];
  if (!viewerPasses(device, settings, who)) return [];
  const common = commonChain(device, settings, who, dir);
  const principal = { id: who.principal.id, name: who.principal.name, kind: who.principal.kind };
  const entries: AccessEntry[] = [];
  for (const type of SESSION_TYPES) {
    const access = reach[type].access;
    if (access === null) continue;
    const keys = [...TYPE_SETTING_KEYS[type], common.viewerKey];
    const values: Partial<Record<RemoteToolsSettingKey, SettingSource>> = {};
    const sets = new Map<string, { id: string; name: string; order: number }>();
    for (const key of keys) {
      const s = source(settings, key);
      values[key] = s;
      if (!sets.has(s.setId)) sets.set(s.setId, { id: s.setId, name: s.setName, order: s.order });
    }
    const setList = [...sets.values()];
    entries.push({
      principal,
      sessionType: type,
      access,
      via: [
        ...common.steps,
        {
          step: 'settings',
          values,
          sets: setList,
          detail: `${type} with ${access} access allowed by ${setList.map((s) => `set "${s.name}"`).join(', ')}`,
        },
      ],
    });
  }
  return entries;
}

/** The links every session type shares: the assignments and collections (check 2) and the viewer's ground (check 3). */
function commonChain(
  device: DeviceFacts,
  settings: EffectiveSettings,
  who: ReviewPrincipal,
  dir: AccessDirectory,
): { steps: ChainStep[]; viewerKey: RemoteToolsSettingKey } {
  const steps: ChainStep[] = [];
  for (const { assignment: a, holder, membership } of who.assignments) {
    const grant = [{ role: a.role, collectionIds: a.collectionIds }];
    if (!hasPermission(grant, 'session.control', device.collectionIds)) continue;
    const scope = a.collectionIds === null ? null : a.collectionIds.map((id) => ({ id, name: dir.collectionNames.get(id) ?? null }));
    const through = membership.length > 1 ? ` through ${membership.join(' → ')}` : '';
    steps.push({
      step: 'role_assignment',
      id: a.id,
      role: a.role,
      scope,
      heldBy: { id: holder.id, name: holder.name, kind: holder.kind },
      membership,
      detail: `${a.role} held by ${holder.name}${through} over ${scope === null ? 'every collection' : scope.map((c) => c.name ?? c.id).join(', ')}`,
    });
    if (a.collectionIds === null) {
      steps.push({
        step: 'collection',
        id: null,
        name: null,
        detail: `every collection (unrestricted scope), device ${device.hostname} included`,
      });
    } else {
      for (const id of a.collectionIds.filter((c) => device.collectionIds.includes(c))) {
        const name = dir.collectionNames.get(id) ?? null;
        steps.push({ step: 'collection', id, name, detail: `collection ${name ?? id} contains device ${device.hostname}` });
      }
    }
  }
  const ground = permittedViewerGround(device, who.facts, settings);
  if (ground?.kind === 'permitted_viewer') {
    const membership = ground.group === null ? [who.principal.name] : (who.membershipPaths.get(ground.group.toLowerCase()) ?? []);
    steps.push({
      step: 'permitted_viewer',
      entry: ground.entry,
      group: ground.group,
      membership,
      setting: source(settings, 'permittedViewers'),
      detail:
        ground.group === null
          ? `${who.principal.name} is in permitted viewers (set "${settings.provenance.permittedViewers.setName}")`
          : `permitted viewer ${ground.entry} through ${membership.join(' → ')} (set "${settings.provenance.permittedViewers.setName}")`,
    });
    return { steps, viewerKey: 'permittedViewers' };
  }
  // viewerPasses held, so the ground is the local-administrator rule.
  const entry = ground?.entry ?? who.principal.name;
  steps.push({
    step: 'local_administrator',
    entry,
    setting: source(settings, 'allowLocalAdminToDoRemoteControl'),
    detail:
      `${entry} is a local administrator of ${device.hostname} and local administrators are granted remote control ` +
      `(set "${settings.provenance.allowLocalAdminToDoRemoteControl.setName}")`,
  });
  return { steps, viewerKey: 'allowLocalAdminToDoRemoteControl' };
}

/** One chain as one line of text (the CSV export's chain column). */
export function chainText(via: ChainStep[]): string {
  return via.map((s) => s.detail).join(' → ');
}
