import { createHash } from 'crypto';
import { z } from 'zod';
import {
  ACCESS_LEVELS,
  AUDIBLE_SIGNALS,
  FIREWALL_PROFILES,
  RA_LEVELS,
  type EffectiveSettings,
  type RemoteToolsSettingKey,
  type RemoteToolsSettings,
  type SettingsSet,
} from './types';

/** The remote-tools values of the ConfigMgr default client settings. Frozen: copy before changing. */
export const CONFIGMGR_DEFAULT_REMOTE_TOOLS: RemoteToolsSettings = Object.freeze({
  enabled: false,
  firewallExceptionProfiles: Object.freeze([]) as unknown as RemoteToolsSettings['firewallExceptionProfiles'],
  allowClientChange: false,
  allowRemCtrlToUnattended: true,
  permissionRequired: true,
  clipboardPermissionRequired: true,
  allowLocalAdminToDoRemoteControl: true,
  accessLevel: 'full',
  permittedViewers: Object.freeze([]) as unknown as string[],
  remCtrlTaskbarIcon: true,
  remCtrlConnectionBar: true,
  audibleSignal: 'begin_end',
  manageUnsolicitedRA: false,
  manageSolicitedRA: false,
  remoteAssistanceLevel: 'none',
  manageTS: false,
  enableTS: false,
  tsUserAuthentication: false,
});

/** Every remote-tools setting key, in declaration order. */
export const REMOTE_TOOLS_SETTING_KEYS: readonly RemoteToolsSettingKey[] = Object.freeze(
  Object.keys(CONFIGMGR_DEFAULT_REMOTE_TOOLS) as RemoteToolsSettingKey[],
);

const firewallProfilesSchema = z.array(z.enum(FIREWALL_PROFILES)).refine((profiles) => new Set(profiles).size === profiles.length, {
  message: 'firewall profiles must be unique',
});

const permittedViewersSchema = z
  .array(
    z
      .string()
      .min(1)
      .max(256)
      // A blank name can never match a principal and only hides a data-entry mistake.
      .refine((name) => name.trim().length > 0, { message: 'viewer name must not be blank' }),
  )
  .max(500);

/** Schema of a complete remote-tools settings group (the default set); unknown keys are refused. */
export const remoteToolsFullSchema = z.strictObject({
  enabled: z.boolean(),
  firewallExceptionProfiles: firewallProfilesSchema,
  allowClientChange: z.boolean(),
  allowRemCtrlToUnattended: z.boolean(),
  permissionRequired: z.boolean(),
  clipboardPermissionRequired: z.boolean(),
  allowLocalAdminToDoRemoteControl: z.boolean(),
  accessLevel: z.enum(ACCESS_LEVELS),
  permittedViewers: permittedViewersSchema,
  remCtrlTaskbarIcon: z.boolean(),
  remCtrlConnectionBar: z.boolean(),
  audibleSignal: z.enum(AUDIBLE_SIGNALS),
  manageUnsolicitedRA: z.boolean(),
  manageSolicitedRA: z.boolean(),
  remoteAssistanceLevel: z.enum(RA_LEVELS),
  manageTS: z.boolean(),
  enableTS: z.boolean(),
  tsUserAuthentication: z.boolean(),
});

/** Schema of the settings a custom set configures (any subset); unknown keys are refused. */
export const remoteToolsPartialSchema = remoteToolsFullSchema.partial();

// Compile-time proof that the schemas and the interface describe the same shape.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const [_schemaMatchesInterface, _partialMatchesInterface]: [
  Same<z.infer<typeof remoteToolsFullSchema>, RemoteToolsSettings>,
  Same<z.infer<typeof remoteToolsPartialSchema>, Partial<RemoteToolsSettings>>,
] = [true, true];

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Canonical JSON: object keys sorted (by UTF-16 code units, recursively), arrays kept in order,
 * no whitespace. Follows JSON.stringify otherwise (`toJSON` honoured, undefined object members
 * dropped, undefined array items and non-finite numbers written as null).
 * @throws TypeError for values JSON cannot represent at top level (undefined, functions, symbols)
 * and for bigints.
 */
export function canonicalJson(value: unknown): string {
  const text = write(value);
  if (text === undefined) throw new TypeError(`cannot serialize ${typeof value} as JSON`);
  return text;
}

function write(value: unknown): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') throw new TypeError('cannot serialize bigint as JSON');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => write(item) ?? 'null').join(',')}]`;
  }
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(record).sort(compareKeys)) {
    const member = write(record[key]);
    if (member !== undefined) members.push(`${JSON.stringify(key)}:${member}`);
  }
  return `{${members.join(',')}}`;
}

/** sha256 (hex) of the canonical JSON of `values`, with list settings sorted so their order is irrelevant. */
export function settingsVersionHash(values: RemoteToolsSettings): string {
  const normalized = {
    ...values,
    permittedViewers: [...values.permittedViewers].sort(compareKeys),
    firewallExceptionProfiles: [...values.firewallExceptionProfiles].sort(compareKeys),
  };
  return createHash('sha256').update(canonicalJson(normalized)).digest('hex');
}

function copyValue<T>(value: T): T {
  return (Array.isArray(value) ? [...value] : value) as T;
}

/**
 * Resultant remote-tools settings of a device from the sets that apply to it.
 * Exactly one set must be the default and carry every key. Custom sets override it field by field:
 * the lowest order number wins, ties broken by id, so input order does not matter; the default set
 * always comes last whatever its order number. List settings are replaced by the winning set,
 * never unioned. A key present with value `undefined` counts as not configured.
 * @throws Error when there is not exactly one default set, when the default lacks keys (named in
 * the message), or when two sets share an id.
 */
export function mergeSettings(sets: SettingsSet[]): EffectiveSettings {
  const defaults = sets.filter((set) => set.isDefault);
  if (defaults.length !== 1) {
    throw new Error(
      defaults.length === 0
        ? 'no default settings set: exactly one set must have isDefault true'
        : `${defaults.length} default settings sets (${defaults.map((d) => d.id).join(', ')}): exactly one is allowed`,
    );
  }
  const defaultSet = defaults[0]!;
  const missing = REMOTE_TOOLS_SETTING_KEYS.filter((key) => defaultSet.remoteTools[key] === undefined);
  if (missing.length > 0) {
    throw new Error(`default settings set ${defaultSet.id} lacks keys: ${missing.join(', ')}`);
  }
  const ids = new Set<string>();
  for (const set of sets) {
    if (ids.has(set.id)) throw new Error(`duplicate settings set id ${set.id}`);
    ids.add(set.id);
  }

  const ordered = sets.filter((set) => !set.isDefault).sort((a, b) => a.order - b.order || compareKeys(a.id, b.id));
  ordered.push(defaultSet);

  const values: Partial<Record<RemoteToolsSettingKey, unknown>> = {};
  const provenance = {} as EffectiveSettings['provenance'];
  for (const key of REMOTE_TOOLS_SETTING_KEYS) {
    // The default set is last and carries every key, so a winner always exists.
    const winner = ordered.find((set) => set.remoteTools[key] !== undefined)!;
    values[key] = copyValue(winner.remoteTools[key]);
    provenance[key] = { setId: winner.id, setName: winner.name, order: winner.order };
  }
  const merged = values as RemoteToolsSettings;
  return { values: merged, provenance, versionHash: settingsVersionHash(merged) };
}
