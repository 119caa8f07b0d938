/** The kinds of remote session rcflow can orchestrate. */
export const SESSION_TYPES = ['remote-control', 'remote-assistance', 'remote-desktop'] as const;
export type SessionType = (typeof SESSION_TYPES)[number];

/** What the viewer asks to do: watch, or take control. */
export const ACCESS_MODES = ['view', 'full'] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

/** Every state of the session lifecycle (DESIGN.md "Session lifecycle"). */
export const SESSION_STATES = [
  'requested',
  'scheduled',
  'validating',
  'eligible',
  'pushing_settings',
  'awaiting_consent',
  'active',
  'ended',
  'rejected',
  'denied',
  'consent_timeout',
  'failed',
  'cancelled',
  'expired',
  'interrupted',
] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** Firewall profiles in which the remote-control exception is opened. */
export const FIREWALL_PROFILES = ['domain', 'private', 'public'] as const;
export type FirewallProfile = (typeof FIREWALL_PROFILES)[number];

/** ConfigMgr "Access level allowed" for remote control. */
export const ACCESS_LEVELS = ['none', 'view', 'full'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

/** ConfigMgr "Level of access for remote assistance". */
export const RA_LEVELS = ['none', 'view', 'full'] as const;
export type RemoteAssistanceLevel = (typeof RA_LEVELS)[number];

export const AUDIBLE_SIGNALS = ['none', 'begin_end', 'repeatedly'] as const;
export type AudibleSignal = (typeof AUDIBLE_SIGNALS)[number];

/**
 * The remote-tools group of client settings, named after the ConfigMgr WMI properties.
 * The default client settings carry every field; a custom set carries the fields it configures.
 */
export interface RemoteToolsSettings {
  enabled: boolean;
  firewallExceptionProfiles: FirewallProfile[];
  allowClientChange: boolean;
  allowRemCtrlToUnattended: boolean;
  permissionRequired: boolean;
  clipboardPermissionRequired: boolean;
  allowLocalAdminToDoRemoteControl: boolean;
  accessLevel: AccessLevel;
  /** Principal names (users and groups) allowed to view; `*` is not a wildcard. */
  permittedViewers: string[];
  remCtrlTaskbarIcon: boolean;
  remCtrlConnectionBar: boolean;
  audibleSignal: AudibleSignal;
  manageUnsolicitedRA: boolean;
  manageSolicitedRA: boolean;
  remoteAssistanceLevel: RemoteAssistanceLevel;
  manageTS: boolean;
  enableTS: boolean;
  tsUserAuthentication: boolean;
}
export type RemoteToolsSettingKey = keyof RemoteToolsSettings;

/** A set of client settings as the merge sees it. */
export interface SettingsSet {
  id: string;
  name: string;
  /** Lower wins; the default set is always last. */
  order: number;
  isDefault: boolean;
  remoteTools: Partial<RemoteToolsSettings>;
}

/** Resultant settings with, for every value, the set that supplied it. */
export interface EffectiveSettings {
  values: RemoteToolsSettings;
  provenance: Record<RemoteToolsSettingKey, { setId: string; setName: string; order: number }>;
  /** Stable hash of `values`, used as the settings version pushed to agents. */
  versionHash: string;
}

export type Permission =
  | 'session.request'
  | 'session.request_on_behalf'
  | 'session.control'
  | 'session.read'
  | 'session.cancel'
  | 'audit.read'
  | 'admin.read'
  | 'admin.write';

export const ROLE_NAMES = ['full_administrator', 'remote_tools_operator', 'read_only_auditor', 'ticket_integration'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

/** A role held by a principal (directly or through a group) over a scope of collections. */
export interface RoleGrant {
  role: RoleName;
  /** null = every collection. */
  collectionIds: string[] | null;
}

export type OsFamily = 'windows' | 'linux' | 'macos';

/** The device as eligibility sees it. */
export interface DeviceFacts {
  id: string;
  hostname: string;
  enrolled: boolean;
  retired: boolean;
  domainJoined: boolean;
  osFamily: OsFamily;
  osBuild: string;
  agentVersion: string | null;
  lastHeartbeatAt: Date | null;
  loggedOnUser: string | null;
  locked: boolean;
  localAdministrators: string[];
  collectionIds: string[];
}

/** A principal as eligibility sees it: its name and the names of the groups it belongs to. */
export interface PrincipalFacts {
  id: string;
  name: string;
  kind: 'user' | 'group' | 'service';
  disabled: boolean;
  groupNames: string[];
  grants: RoleGrant[];
}

export interface SessionAsk {
  type: SessionType;
  access: AccessMode;
  reason: string | null;
  ticketRef: string | null;
  /** Immediate requests need the device online now; scheduled ones are checked when due. */
  immediate: boolean;
}

/** Minimum agent versions and supported OS families per session type. */
export interface TypeRequirements {
  minAgentVersion: string;
  osFamilies: OsFamily[];
  /** Minimum OS build compared as dotted numbers; null = any. */
  minOsBuild: string | null;
}

export interface EligibilityPolicy {
  presenceGraceSeconds: number;
  requirements: Record<SessionType, TypeRequirements>;
}

export interface EligibilityInput {
  now: Date;
  /** null when the device id is unknown. */
  device: DeviceFacts | null;
  requester: PrincipalFacts;
  viewer: PrincipalFacts | null;
  ask: SessionAsk;
  /** null when the device is unknown. */
  settings: EffectiveSettings | null;
  /** Ids of other sessions holding the device in a controlling state. */
  controllingSessionIds: string[];
  policy: EligibilityPolicy;
}

export const CHECK_IDS = [
  'device_enrolled',
  'rbac_scope',
  'permitted_viewer',
  'type_enabled',
  'access_level',
  'device_online',
  'user_presence',
  'single_controller',
  'unattended_justification',
  'agent_requirements',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface CheckResult {
  id: CheckId;
  /** 1..10 as numbered in DESIGN.md. */
  number: number;
  passed: boolean;
  detail: string;
}

/** How consent will be handled once the session starts. */
export type ConsentRule =
  | 'prompt_user' // an active user, prompt on (or remote assistance)
  | 'unattended_allowed' // no user or locked screen, unattended allowed
  | 'not_required' // an active user, prompt off
  | 'refused'; // no user or locked, unattended not allowed

export interface EligibilityDecision {
  eligible: boolean;
  checks: CheckResult[];
  consentRule: ConsentRule;
  /** Whether nobody is at the device (no user, or a locked screen). */
  unattended: boolean;
}
