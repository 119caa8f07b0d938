import { z } from 'zod';
import { ROLE_NAMES, findUnstorableText, parseVersion, remoteToolsFullSchema, textProblem } from '@rcflow/domain';
import { cursor, dateTime, limit, uuid } from '../common/validation';

/*
 * What callers may send to the administration API. Every body is a strict object (unknown
 * fields are refused with a 400) and every string is something PostgreSQL can store: text or
 * jsonb with a NUL character or an unpaired surrogate would otherwise fail inside the database
 * and surface as a 500. Defaults are applied by the services' write functions, not here, so the
 * same defaults hold for the seed and for HTTP, and /docs shows which fields are optional.
 */

/** Whether `s` holds a C0 control character (U+0000..U+001F) or DEL (U+007F). */
function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || c === 0x7f) return true;
  }
  return false;
}
/** Whether every string inside `value` can be stored in text and jsonb columns (the rule of libs/domain's text.ts). */
export function storable(value: unknown): boolean {
  return findUnstorableText(value) === null;
}

/** A strict body whose strings are all storable. */
export function body<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.strictObject(shape).refine(storable, { message: 'strings must not contain NUL characters or unpaired surrogates' });
}

/** One line of text, trimmed, not blank, without control characters. */
export const line = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'must not be blank')
    .max(max)
    .refine((s) => !hasControlChar(s) && textProblem(s) === null, 'must not contain control characters');

/** A heartbeat may not claim to come from the future (a little clock skew is tolerated). */
const HEARTBEAT_SKEW_MS = 5 * 60_000;
const heartbeatAt = dateTime.refine(
  (s) => Date.parse(s) <= Date.now() + HEARTBEAT_SKEW_MS,
  'must not be more than 5 minutes in the future',
);

// ---------------------------------------------------------------------------------------------
// Principals

/** 1..256 characters of letters, digits, `.`, `_`, `@`, `\`, space and `-` (e.g. `CONTOSO\helpdesk`). */
export const principalName = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9._@\\ -]{1,256}$/, 'must be 1-256 characters of letters, digits, . _ @ \\ space and -');

export const PRINCIPAL_KINDS = ['user', 'group', 'service'] as const;

export const createPrincipalSchema = body({
  name: principalName,
  kind: z.enum(PRINCIPAL_KINDS),
  displayName: line(256).nullable().optional(),
});
export type CreatePrincipalInput = z.infer<typeof createPrincipalSchema>;

export const updatePrincipalSchema = body({
  displayName: line(256).nullable().optional(),
  disabled: z.boolean().optional(),
});
export type UpdatePrincipalInput = z.infer<typeof updatePrincipalSchema>;

export const listPrincipalsQuery = body({
  kind: z.enum(PRINCIPAL_KINDS).optional(),
  name: z.string().max(256).optional(),
  limit,
  cursor: cursor.optional(),
});

// ---------------------------------------------------------------------------------------------
// Devices

const hostname = z
  .string()
  .trim()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/,
    'must be 1-63 letters, digits, - or _, starting with a letter or digit (the short name; the FQDN goes in fqdn)',
  );
const fqdn = z
  .string()
  .trim()
  .max(253)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}(\.[A-Za-z0-9][A-Za-z0-9_-]{0,62})*$/, 'must be a DNS name such as pc-0042.contoso.com');
const domain = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, 'must be a NetBIOS or DNS domain name such as CONTOSO or contoso.com');
export const OS_FAMILIES = ['windows', 'linux', 'macos'] as const;
const osBuild = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9._+ -]{0,64}$/, 'must be up to 64 letters, digits, . _ + - or spaces');
const agentVersion = z
  .string()
  .trim()
  .max(64)
  .refine((v) => parseVersion(v) !== null, 'must be a dotted numeric version such as 1.2.0');
const accountName = line(256);

const deviceFields = {
  fqdn: fqdn.nullable().optional(),
  domainJoined: z.boolean().optional(),
  domain: domain.nullable().optional(),
  osFamily: z.enum(OS_FAMILIES).optional(),
  osBuild: osBuild.optional(),
  agentVersion: agentVersion.nullable().optional(),
  localAdministrators: z.array(accountName).max(500).optional(),
  enrolled: z.boolean().optional(),
  lastHeartbeatAt: heartbeatAt.nullable().optional(),
  loggedOnUser: accountName.nullable().optional(),
  locked: z.boolean().optional(),
};

export const createDeviceSchema = body({ hostname, ...deviceFields });
export type CreateDeviceInput = z.infer<typeof createDeviceSchema>;

export const updateDeviceSchema = body({ hostname: hostname.optional(), ...deviceFields, retired: z.boolean().optional() });
export type UpdateDeviceInput = z.infer<typeof updateDeviceSchema>;

export const listDevicesQuery = body({
  hostname: z.string().max(253).optional(),
  collectionId: uuid.optional(),
  limit,
  cursor: cursor.optional(),
});

// ---------------------------------------------------------------------------------------------
// Collections

export const createCollectionSchema = body({
  name: line(256),
  description: line(2000).nullable().optional(),
});
export type CreateCollectionInput = z.infer<typeof createCollectionSchema>;

export const updateCollectionSchema = body({
  name: line(256).optional(),
  description: line(2000).nullable().optional(),
});
export type UpdateCollectionInput = z.infer<typeof updateCollectionSchema>;

export const pageQuery = body({ limit, cursor: cursor.optional() });

// ---------------------------------------------------------------------------------------------
// Client settings

/** Custom order numbers; 10000 belongs to the default set. */
export const DEFAULT_SETTINGS_ORDER = 10000;
const order = z
  .number()
  .int()
  .min(1)
  .max(DEFAULT_SETTINGS_ORDER - 1);

export const remoteToolsPartialInput = remoteToolsFullSchema.partial();

/**
 * A merge patch of remote-tools values (RFC 7396 style): a key with a value sets it, a key with
 * null removes it from a custom set (it is then "not configured" and lower-priority sets or the
 * default supply it). The default set must stay complete, so null is refused there.
 */
export const remoteToolsPatchSchema = z.strictObject(
  Object.fromEntries(Object.entries(remoteToolsFullSchema.shape).map(([k, s]) => [k, (s as z.ZodType).nullable().optional()])) as {
    [K in keyof typeof remoteToolsFullSchema.shape]: z.ZodOptional<z.ZodNullable<(typeof remoteToolsFullSchema.shape)[K]>>;
  },
);
export type RemoteToolsPatch = z.infer<typeof remoteToolsPatchSchema>;

export const createClientSettingsSchema = body({
  name: line(256),
  order,
  remoteTools: remoteToolsPartialInput.optional(),
});
export type CreateClientSettingsInput = z.infer<typeof createClientSettingsSchema>;

export const updateClientSettingsSchema = body({
  name: line(256).optional(),
  order: order.optional(),
  remoteTools: remoteToolsPatchSchema.optional(),
});
export type UpdateClientSettingsInput = z.infer<typeof updateClientSettingsSchema>;

// ---------------------------------------------------------------------------------------------
// Role assignments

export const createRoleAssignmentSchema = body({
  principalId: uuid,
  role: z.enum(ROLE_NAMES),
  collectionIds: z
    .array(uuid)
    .min(1, 'an empty scope covers nothing; use null for every collection')
    .max(1000)
    .refine((ids) => new Set(ids.map((i) => i.toLowerCase())).size === ids.length, 'collection ids must be unique')
    .nullable(),
});
export type CreateRoleAssignmentInput = z.infer<typeof createRoleAssignmentSchema>;

export const listRoleAssignmentsQuery = body({ principalId: uuid.optional(), limit, cursor: cursor.optional() });

// ---------------------------------------------------------------------------------------------
// API keys

export const createApiKeySchema = body({
  principalId: uuid,
  name: line(256),
  expiresAt: dateTime
    .refine((s) => Date.parse(s) > Date.now(), 'must be in the future')
    .nullable()
    .optional(),
});
export type CreateApiKeyInput = z.infer<typeof createApiKeySchema>;

export const listApiKeysQuery = body({ principalId: uuid.optional(), limit, cursor: cursor.optional() });

// ---------------------------------------------------------------------------------------------
// Path parameters

export const collectionMemberParams = z.strictObject({ id: uuid, deviceId: uuid });
export const deploymentParams = z.strictObject({ id: uuid, collectionId: uuid });
export const groupMemberParams = z.strictObject({ groupId: uuid, memberId: uuid });

// ---------------------------------------------------------------------------------------------
// Enrolment tokens

export const createEnrolmentTokenSchema = z.strictObject({
  hostname: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'must be a host name')
    .optional()
    .describe('Only an agent reporting this host name may use the token; if a device of that name exists, the token re-keys it'),
  deviceId: uuid
    .optional()
    .describe('Re-key this existing device: the token replaces its credential and enrols nothing else (not with hostname or collectionId)'),
  collectionId: uuid
    .optional()
    .describe('New devices enrolled with the token join this collection; required from an administrator scoped to some collections'),
  maxUses: z.number().int().min(1).max(100_000).default(1),
  expiresInSeconds: z
    .number()
    .int()
    .min(60)
    .max(30 * 86_400)
    .default(3600),
});
export type CreateEnrolmentTokenInput = z.input<typeof createEnrolmentTokenSchema>;
