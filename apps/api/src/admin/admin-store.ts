import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { appendAudit, type AuditEntry } from '@rcflow/audit';
import { isUniqueViolation } from '@rcflow/database';
import { type RemoteToolsSettings, remoteToolsFullSchema, remoteToolsPartialSchema } from '@rcflow/domain';
import { newKeySecret, formatKey } from '../auth/api-keys';
import { Conflict, NotFound, UnprocessableRequest } from '@rcflow/domain';
import { parseOrThrow } from '../common/validation';
import {
  type ApiKeyView,
  type ClientSettingsView,
  type CollectionView,
  type DeviceView,
  type PrincipalView,
  type RoleAssignmentView,
  findApiKey,
  findClientSettings,
  findCollection,
  findDevice,
  findPrincipal,
  findRoleAssignment,
  rowsOf,
} from './admin-queries';
import {
  type CreateApiKeyInput,
  type CreateClientSettingsInput,
  type CreateCollectionInput,
  type CreateDeviceInput,
  type CreatePrincipalInput,
  type CreateRoleAssignmentInput,
  type RemoteToolsPatch,
  type UpdateClientSettingsInput,
  type UpdateCollectionInput,
  type UpdateDeviceInput,
  type UpdatePrincipalInput,
  DEFAULT_SETTINGS_ORDER,
  createApiKeySchema,
  createClientSettingsSchema,
  createCollectionSchema,
  createDeviceSchema,
  createPrincipalSchema,
  createRoleAssignmentSchema,
  updateClientSettingsSchema,
  updateCollectionSchema,
  updateDeviceSchema,
  updatePrincipalSchema,
} from './admin.schemas';

/*
 * Every administration write, usable with or without HTTP (the demo seed and tests call these
 * with an EntityManager). Each function runs inside the caller's transaction and appends its
 * audit event there, so the change and its record commit or roll back together; callers must
 * pass a transactional EntityManager (`dataSource.transaction(tx => ...)`).
 *
 * `key` is the audit HMAC key (config.audit.hmacKey). `actorId` is the principal acting, or null
 * when the system did it (seed, migrations): the event is then recorded with actorKind 'system'.
 * Inputs are validated again here with the same schemas the HTTP layer uses, so a seed cannot
 * store what the API would refuse. A change that changes nothing (adding an existing member,
 * revoking a revoked key, a patch with the current values) writes nothing and reports
 * `changed: false` where the result has that field.
 */

export type ActorId = string | null;

export interface MembershipResult {
  changed: boolean;
}

async function audit(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  entry: Omit<AuditEntry, 'actorId' | 'actorKind' | 'outcome'>,
): Promise<void> {
  await appendAudit(tx, key, [
    { ...entry, actorId, actorKind: actorId === null ? 'system' : 'principal', outcome: 'succeeded' },
  ]);
}

/** Runs an insert or update, turning a unique violation into a 409 with `message`. */
async function unique<T>(message: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isUniqueViolation(err)) throw new Conflict(message);
    throw err;
  }
}

type Changes = Record<string, { from: unknown; to: unknown }>;

/** The fields of `patch` whose (normalized) value differs from `current`. */
function diff(current: Record<string, unknown>, patch: Record<string, unknown>): Changes {
  const changes: Changes = {};
  for (const [field, to] of Object.entries(patch)) {
    if (to === undefined) continue;
    const from = current[field] ?? null;
    if (JSON.stringify(from) !== JSON.stringify(to)) changes[field] = { from, to };
  }
  return changes;
}

/** `UPDATE table SET col = $n, …, updated_at = now() WHERE id = $1` for the changed fields. */
async function updateColumns(
  tx: EntityManager,
  table: string,
  id: string,
  columns: Record<string, string>,
  changes: Changes,
  cast: Record<string, string> = {},
): Promise<void> {
  const params: unknown[] = [id];
  const sets = Object.entries(changes).map(([field, { to }]) => {
    params.push(to);
    return `${columns[field]} = $${params.length}${cast[field] ?? ''}`;
  });
  await tx.query(`UPDATE ${table} SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`, params);
}

const isoOrNull = (s: string | null | undefined) => (s === undefined ? undefined : s === null ? null : new Date(s).toISOString());

async function lockRow(tx: EntityManager, table: string, id: string, mode: 'UPDATE' | 'SHARE'): Promise<Record<string, any> | undefined> {
  const [row] = await tx.query(`SELECT * FROM ${table} WHERE id = $1 FOR ${mode}`, [id]);
  return row;
}

// =============================================================================================
// Devices

const DEVICE_COLUMN: Record<string, string> = {
  hostname: 'hostname',
  fqdn: 'fqdn',
  domainJoined: 'domain_joined',
  domain: 'domain',
  osFamily: 'os_family',
  osBuild: 'os_build',
  agentVersion: 'agent_version',
  localAdministrators: 'local_administrators',
  enrolled: 'enrolled',
  lastHeartbeatAt: 'last_heartbeat_at',
  loggedOnUser: 'logged_on_user',
  locked: 'locked',
  retired: 'retired',
};

/** Hostnames are unique without regard to case (Windows and DNS names are case-insensitive). */
async function assertHostnameFree(tx: EntityManager, hostname: string, exceptId: string | null): Promise<void> {
  const [other] = await tx.query('SELECT id FROM devices WHERE lower(hostname) = lower($1) AND id IS DISTINCT FROM $2', [
    hostname,
    exceptId,
  ]);
  if (other) throw new Conflict(`a device with hostname ${hostname} already exists (${other.id})`);
}

/**
 * Registers a device. Defaults: osFamily 'windows', domainJoined false, osBuild '',
 * localAdministrators [], enrolled true, locked false; everything else null.
 */
export async function createDevice(tx: EntityManager, key: string, actorId: ActorId, input: CreateDeviceInput): Promise<DeviceView> {
  const d = parseOrThrow(createDeviceSchema, input);
  await assertHostnameFree(tx, d.hostname, null);
  const id = randomUUID();
  await unique(`a device with hostname ${d.hostname} already exists`, () =>
    tx.query(
      `INSERT INTO devices (id, hostname, fqdn, domain_joined, domain, os_family, os_build, agent_version, local_administrators,
         enrolled, last_heartbeat_at, logged_on_user, locked)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text[], $10, $11, $12, $13)`,
      [
        id,
        d.hostname,
        d.fqdn ?? null,
        d.domainJoined ?? false,
        d.domain ?? null,
        d.osFamily ?? 'windows',
        d.osBuild ?? '',
        d.agentVersion ?? null,
        d.localAdministrators ?? [],
        d.enrolled ?? true,
        isoOrNull(d.lastHeartbeatAt) ?? null,
        d.loggedOnUser ?? null,
        d.locked ?? false,
      ],
    ),
  );
  const device = (await findDevice(tx, id))!;
  const { id: _id, createdAt: _c, updatedAt: _u, collectionIds: _m, appliedSettingsHash: _h, ...fields } = device;
  await audit(tx, key, actorId, { stream: `device:${id}`, action: 'device.created', deviceId: id, data: fields });
  return device;
}

/** Changes the given fields (null clears a nullable one); `retired` retires or reinstates the device. */
export async function updateDevice(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  id: string,
  input: UpdateDeviceInput,
): Promise<DeviceView> {
  const patch = parseOrThrow(updateDeviceSchema, input);
  if (!(await lockRow(tx, 'devices', id, 'UPDATE'))) throw new NotFound('device', id);
  const current = (await findDevice(tx, id))!;
  const changes = diff(current as unknown as Record<string, unknown>, {
    ...patch,
    lastHeartbeatAt: isoOrNull(patch.lastHeartbeatAt),
  });
  if (Object.keys(changes).length === 0) return current;
  if (changes.hostname) await assertHostnameFree(tx, patch.hostname!, id);
  await unique(`a device with hostname ${patch.hostname} already exists`, () =>
    updateColumns(tx, 'devices', id, DEVICE_COLUMN, changes, { localAdministrators: '::text[]', lastHeartbeatAt: '::timestamptz' }),
  );
  await audit(tx, key, actorId, { stream: `device:${id}`, action: 'device.updated', deviceId: id, data: { changes } });
  return (await findDevice(tx, id))!;
}

// =============================================================================================
// Collections

async function assertCollectionNameFree(tx: EntityManager, name: string, exceptId: string | null): Promise<void> {
  const [other] = await tx.query('SELECT id FROM collections WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2', [
    name,
    exceptId,
  ]);
  if (other) throw new Conflict(`a collection named ${name} already exists (${other.id})`);
}

export async function createCollection(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  input: CreateCollectionInput,
): Promise<CollectionView> {
  const c = parseOrThrow(createCollectionSchema, input);
  await assertCollectionNameFree(tx, c.name, null);
  const id = randomUUID();
  await unique(`a collection named ${c.name} already exists`, () =>
    tx.query('INSERT INTO collections (id, name, description) VALUES ($1, $2, $3)', [id, c.name, c.description ?? null]),
  );
  await audit(tx, key, actorId, {
    stream: `collection:${id}`,
    action: 'collection.created',
    data: { name: c.name, description: c.description ?? null },
  });
  return (await findCollection(tx, id))!;
}

export async function updateCollection(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  id: string,
  input: UpdateCollectionInput,
): Promise<CollectionView> {
  const patch = parseOrThrow(updateCollectionSchema, input);
  if (!(await lockRow(tx, 'collections', id, 'UPDATE'))) throw new NotFound('collection', id);
  const current = (await findCollection(tx, id))!;
  const changes = diff(current as unknown as Record<string, unknown>, patch);
  if (Object.keys(changes).length === 0) return current;
  if (changes.name) await assertCollectionNameFree(tx, patch.name!, id);
  await unique(`a collection named ${patch.name} already exists`, () =>
    updateColumns(tx, 'collections', id, { name: 'name', description: 'description' }, changes),
  );
  await audit(tx, key, actorId, { stream: `collection:${id}`, action: 'collection.updated', data: { changes } });
  return (await findCollection(tx, id))!;
}

/** Deletes an empty collection nothing refers to (no members, deployments or role assignments). */
export async function deleteCollection(tx: EntityManager, key: string, actorId: ActorId, id: string): Promise<CollectionView> {
  // FOR UPDATE waits for, and then blocks, writers that reference the collection (they lock it FOR SHARE).
  if (!(await lockRow(tx, 'collections', id, 'UPDATE'))) throw new NotFound('collection', id);
  const current = (await findCollection(tx, id))!;
  const [refs] = await tx.query(
    `SELECT (SELECT count(*) FROM collection_members WHERE collection_id = $1)::int AS members,
            (SELECT count(*) FROM settings_deployments WHERE collection_id = $1)::int AS deployments,
            (SELECT count(*) FROM role_assignments WHERE $1 = ANY(collection_ids))::int AS role_assignments`,
    [id],
  );
  const members = Number(refs.members);
  const deployments = Number(refs.deployments);
  const roleAssignments = Number(refs.role_assignments);
  if (members + deployments + roleAssignments > 0) {
    throw new Conflict(
      `collection ${current.name} is still in use (${members} members, ${deployments} client settings deployments, ` +
        `${roleAssignments} role assignments); remove them first`,
      { members, deployments, roleAssignments },
    );
  }
  await tx.query('DELETE FROM collections WHERE id = $1', [id]);
  await audit(tx, key, actorId, {
    stream: `collection:${id}`,
    action: 'collection.deleted',
    data: { name: current.name, description: current.description },
  });
  return current;
}

async function lockCollectionAndDevice(tx: EntityManager, collectionId: string, deviceId: string) {
  const collection = await lockRow(tx, 'collections', collectionId, 'SHARE');
  if (!collection) throw new NotFound('collection', collectionId);
  const device = await lockRow(tx, 'devices', deviceId, 'SHARE');
  if (!device) throw new NotFound('device', deviceId);
  return { collection, device };
}

export async function addCollectionMember(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  collectionId: string,
  deviceId: string,
): Promise<{ collectionId: string; deviceId: string } & MembershipResult> {
  const { collection, device } = await lockCollectionAndDevice(tx, collectionId, deviceId);
  const inserted = await tx.query(
    `INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING device_id`,
    [collectionId, deviceId],
  );
  const changed = rowsOf(inserted).length > 0;
  if (changed) {
    await audit(tx, key, actorId, {
      stream: `collection:${collectionId}`,
      action: 'collection.member_added',
      deviceId,
      data: { collectionName: collection.name, deviceId, hostname: device.hostname },
    });
  }
  return { collectionId, deviceId, changed };
}

export async function removeCollectionMember(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  collectionId: string,
  deviceId: string,
): Promise<{ collectionId: string; deviceId: string } & MembershipResult> {
  const { collection, device } = await lockCollectionAndDevice(tx, collectionId, deviceId);
  const deleted = await tx.query(
    'DELETE FROM collection_members WHERE collection_id = $1 AND device_id = $2 RETURNING device_id',
    [collectionId, deviceId],
  );
  const changed = rowsOf(deleted).length > 0;
  if (changed) {
    await audit(tx, key, actorId, {
      stream: `collection:${collectionId}`,
      action: 'collection.member_removed',
      deviceId,
      data: { collectionName: collection.name, deviceId, hostname: device.hostname },
    });
  }
  return { collectionId, deviceId, changed };
}

// =============================================================================================
// Client settings

async function assertSettingsNameFree(tx: EntityManager, name: string, exceptId: string | null): Promise<void> {
  const [other] = await tx.query('SELECT id FROM client_settings WHERE lower(name) = lower($1) AND id IS DISTINCT FROM $2', [
    name,
    exceptId,
  ]);
  if (other) throw new Conflict(`client settings named ${name} already exist (${other.id})`);
}

/** Applies a merge patch: a value sets the key, null removes it. */
function applyRemoteToolsPatch(stored: Partial<RemoteToolsSettings>, patch: RemoteToolsPatch): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...stored };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

function remoteToolsChanges(from: Record<string, unknown>, to: Record<string, unknown>): Changes {
  const changes: Changes = {};
  for (const k of new Set([...Object.keys(from), ...Object.keys(to)])) {
    if (JSON.stringify(from[k] ?? null) !== JSON.stringify(to[k] ?? null)) changes[k] = { from: from[k] ?? null, to: to[k] ?? null };
  }
  return changes;
}

/** Creates a custom set (not deployed anywhere yet). `remoteTools` holds only the keys it configures. */
export async function createClientSettings(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  input: CreateClientSettingsInput,
): Promise<ClientSettingsView> {
  const s = parseOrThrow(createClientSettingsSchema, input);
  const remoteTools = s.remoteTools ?? {};
  await assertSettingsNameFree(tx, s.name, null);
  const id = randomUUID();
  await unique(`client settings named ${s.name} already exist`, () =>
    tx.query('INSERT INTO client_settings (id, name, is_default, priority, remote_tools) VALUES ($1, $2, false, $3, $4::jsonb)', [
      id,
      s.name,
      s.order,
      JSON.stringify(remoteTools),
    ]),
  );
  await audit(tx, key, actorId, {
    stream: `settings:${id}`,
    action: 'settings.created',
    data: { name: s.name, order: s.order, remoteTools },
  });
  return (await findClientSettings(tx, id))!;
}

/**
 * Renames, reorders or patches a set. For the default set the patched remote-tools values must
 * stay complete (validated with remoteToolsFullSchema) and the order stays 10000.
 */
export async function updateClientSettings(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  id: string,
  input: UpdateClientSettingsInput,
): Promise<ClientSettingsView> {
  const patch = parseOrThrow(updateClientSettingsSchema, input);
  const row = await lockRow(tx, 'client_settings', id, 'UPDATE');
  if (!row) throw new NotFound('client settings', id);
  if (row.is_default && patch.order !== undefined) {
    throw new UnprocessableRequest(`the default client settings always have order ${DEFAULT_SETTINGS_ORDER}; order cannot be set`);
  }
  const changes: Changes = diff({ name: row.name, order: row.priority }, { name: patch.name, order: patch.order });
  const stored = (row.remote_tools ?? {}) as Partial<RemoteToolsSettings>;
  let remoteTools: Record<string, unknown> = stored;
  let remoteToolsChanged: Changes = {};
  if (patch.remoteTools) {
    const merged = applyRemoteToolsPatch(stored, patch.remoteTools);
    remoteTools = row.is_default
      ? parseOrThrow(remoteToolsFullSchema, merged, 'remoteTools (the default set must stay complete)')
      : parseOrThrow(remoteToolsPartialSchema, merged, 'remoteTools');
    remoteToolsChanged = remoteToolsChanges(stored, remoteTools);
  }
  if (Object.keys(changes).length === 0 && Object.keys(remoteToolsChanged).length === 0) {
    return (await findClientSettings(tx, id))!;
  }
  if (changes.name) await assertSettingsNameFree(tx, patch.name!, id);
  await unique(`client settings named ${patch.name} already exist`, () =>
    tx.query('UPDATE client_settings SET name = $2, priority = $3, remote_tools = $4::jsonb, updated_at = now() WHERE id = $1', [
      id,
      patch.name ?? row.name,
      patch.order ?? row.priority,
      JSON.stringify(remoteTools),
    ]),
  );
  await audit(tx, key, actorId, {
    stream: `settings:${id}`,
    action: 'settings.updated',
    data: { isDefault: row.is_default, changes, remoteTools: remoteToolsChanged },
  });
  return (await findClientSettings(tx, id))!;
}

/** Patches the default set (see updateClientSettings); `order` is not accepted. */
export async function updateDefaultClientSettings(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  input: Omit<UpdateClientSettingsInput, 'order'>,
): Promise<ClientSettingsView> {
  const [row] = await tx.query('SELECT id FROM client_settings WHERE is_default');
  if (!row) throw new NotFound('client settings', 'default');
  return updateClientSettings(tx, key, actorId, row.id, input);
}

/** Deletes a custom set and its deployments; the default set cannot be deleted. */
export async function deleteClientSettings(tx: EntityManager, key: string, actorId: ActorId, id: string): Promise<ClientSettingsView> {
  const row = await lockRow(tx, 'client_settings', id, 'UPDATE');
  if (!row) throw new NotFound('client settings', id);
  if (row.is_default) throw new UnprocessableRequest('the default client settings apply to every device and cannot be deleted');
  const current = (await findClientSettings(tx, id))!;
  await tx.query('DELETE FROM settings_deployments WHERE settings_id = $1', [id]);
  await tx.query('DELETE FROM client_settings WHERE id = $1', [id]);
  await audit(tx, key, actorId, {
    stream: `settings:${id}`,
    action: 'settings.deleted',
    data: { name: current.name, order: current.order, remoteTools: current.remoteTools, undeployedFrom: current.collectionIds },
  });
  return current;
}

async function lockSettingsAndCollection(tx: EntityManager, settingsId: string, collectionId: string) {
  const settings = await lockRow(tx, 'client_settings', settingsId, 'SHARE');
  if (!settings) throw new NotFound('client settings', settingsId);
  if (settings.is_default) {
    throw new UnprocessableRequest('the default client settings apply to every device; only custom settings are deployed to collections');
  }
  const collection = await lockRow(tx, 'collections', collectionId, 'SHARE');
  if (!collection) throw new NotFound('collection', collectionId);
  return { settings, collection };
}

export async function deployClientSettings(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  settingsId: string,
  collectionId: string,
): Promise<{ settingsId: string; collectionId: string } & MembershipResult> {
  const { settings, collection } = await lockSettingsAndCollection(tx, settingsId, collectionId);
  const inserted = await tx.query(
    'INSERT INTO settings_deployments (settings_id, collection_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING settings_id',
    [settingsId, collectionId],
  );
  const changed = rowsOf(inserted).length > 0;
  if (changed) {
    await audit(tx, key, actorId, {
      stream: `settings:${settingsId}`,
      action: 'settings.deployed',
      data: { settingsName: settings.name, collectionId, collectionName: collection.name },
    });
  }
  return { settingsId, collectionId, changed };
}

export async function undeployClientSettings(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  settingsId: string,
  collectionId: string,
): Promise<{ settingsId: string; collectionId: string } & MembershipResult> {
  const { settings, collection } = await lockSettingsAndCollection(tx, settingsId, collectionId);
  const deleted = await tx.query(
    'DELETE FROM settings_deployments WHERE settings_id = $1 AND collection_id = $2 RETURNING settings_id',
    [settingsId, collectionId],
  );
  const changed = rowsOf(deleted).length > 0;
  if (changed) {
    await audit(tx, key, actorId, {
      stream: `settings:${settingsId}`,
      action: 'settings.undeployed',
      data: { settingsName: settings.name, collectionId, collectionName: collection.name },
    });
  }
  return { settingsId, collectionId, changed };
}

// =============================================================================================
// Principals and groups

export async function createPrincipal(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  input: CreatePrincipalInput,
): Promise<PrincipalView> {
  const p = parseOrThrow(createPrincipalSchema, input);
  const id = randomUUID();
  // uq_principals_name is on lower(name): names are unique without regard to case.
  await unique(`a principal named ${p.name} already exists (names are compared without regard to case)`, () =>
    tx.query('INSERT INTO principals (id, name, kind, display_name) VALUES ($1, $2, $3, $4)', [id, p.name, p.kind, p.displayName ?? null]),
  );
  await audit(tx, key, actorId, {
    stream: `principal:${id}`,
    action: 'principal.created',
    data: { name: p.name, kind: p.kind, displayName: p.displayName ?? null },
  });
  return (await findPrincipal(tx, id))!;
}

/** Changes displayName or disabled. Disabling the last principal that can administer everything is refused. */
export async function updatePrincipal(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  id: string,
  input: UpdatePrincipalInput,
): Promise<PrincipalView> {
  const patch = parseOrThrow(updatePrincipalSchema, input);
  return guardAdministration(tx, async () => {
    if (!(await lockRow(tx, 'principals', id, 'UPDATE'))) throw new NotFound('principal', id);
    const current = (await findPrincipal(tx, id))!;
    const changes = diff(current as unknown as Record<string, unknown>, patch);
    if (Object.keys(changes).length === 0) return current;
    await updateColumns(tx, 'principals', id, { displayName: 'display_name', disabled: 'disabled' }, changes);
    await audit(tx, key, actorId, {
      stream: `principal:${id}`,
      action: changes.disabled ? (patch.disabled ? 'principal.disabled' : 'principal.enabled') : 'principal.updated',
      data: { name: current.name, changes },
    });
    return (await findPrincipal(tx, id))!;
  });
}

/** Serializes group-membership changes so two concurrent additions cannot form a cycle together. */
const GROUP_MEMBERSHIP_LOCK = 0x7263666c6f77; // "rcflow"

async function lockGroupAndMember(tx: EntityManager, groupId: string, memberId: string) {
  const group = await lockRow(tx, 'principals', groupId, 'SHARE');
  if (!group) throw new NotFound('group', groupId);
  if (group.kind !== 'group') {
    throw new UnprocessableRequest(`principal ${group.name} is a ${group.kind}, not a group; only groups have members`);
  }
  const member = await lockRow(tx, 'principals', memberId, 'SHARE');
  if (!member) throw new NotFound('principal', memberId);
  return { group, member };
}

/** Adds a user, service or group to a group. A group cannot contain itself, directly or through nesting. */
export async function addGroupMember(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  groupId: string,
  memberId: string,
): Promise<{ groupId: string; memberId: string } & MembershipResult> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [GROUP_MEMBERSHIP_LOCK]);
  const { group, member } = await lockGroupAndMember(tx, groupId, memberId);
  if (groupId === memberId) throw new UnprocessableRequest(`group ${group.name} cannot be a member of itself`);
  if (member.kind === 'group') {
    // Would the group end up inside itself? It does when it already is (transitively) a member of the new member.
    const [cycle] = await tx.query(
      `WITH RECURSIVE inside(id) AS (
          SELECT member_id FROM group_members WHERE group_id = $1
          UNION SELECT gm.member_id FROM group_members gm JOIN inside ON gm.group_id = inside.id)
       SELECT 1 AS hit FROM inside WHERE id = $2 LIMIT 1`,
      [memberId, groupId],
    );
    if (cycle) {
      throw new Conflict(`group ${member.name} already contains ${group.name}; adding it to ${group.name} would make a cycle`);
    }
  }
  const inserted = await tx.query(
    'INSERT INTO group_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING member_id',
    [groupId, memberId],
  );
  const changed = rowsOf(inserted).length > 0;
  if (changed) {
    await audit(tx, key, actorId, {
      stream: `principal:${groupId}`,
      action: 'principal.member_added',
      data: { groupName: group.name, memberId, memberName: member.name, memberKind: member.kind },
    });
  }
  return { groupId, memberId, changed };
}

/** Removes a member from a group; refused when that would leave nobody able to administer everything. */
export async function removeGroupMember(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  groupId: string,
  memberId: string,
): Promise<{ groupId: string; memberId: string } & MembershipResult> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [GROUP_MEMBERSHIP_LOCK]);
  return guardAdministration(tx, async () => {
    const { group, member } = await lockGroupAndMember(tx, groupId, memberId);
    const deleted = await tx.query('DELETE FROM group_members WHERE group_id = $1 AND member_id = $2 RETURNING member_id', [
      groupId,
      memberId,
    ]);
    const changed = rowsOf(deleted).length > 0;
    if (changed) {
      await audit(tx, key, actorId, {
        stream: `principal:${groupId}`,
        action: 'principal.member_removed',
        data: { groupName: group.name, memberId, memberName: member.name, memberKind: member.kind },
      });
    }
    return { groupId, memberId, changed };
  });
}

// =============================================================================================
// Lock-out protection

/**
 * Whether some enabled user or service holds full_administrator over every collection, directly
 * or through enabled groups — i.e. whether someone can still administer rcflow.
 */
async function someoneAdministersEverything(tx: EntityManager): Promise<boolean> {
  const [row] = await tx.query(
    `WITH RECURSIVE holders(id, kind) AS (
        SELECT p.id, p.kind FROM role_assignments r JOIN principals p ON p.id = r.principal_id
         WHERE r.role = 'full_administrator' AND r.collection_ids IS NULL AND NOT p.disabled
        UNION
        SELECT p.id, p.kind FROM holders h JOIN group_members gm ON gm.group_id = h.id JOIN principals p ON p.id = gm.member_id
         WHERE h.kind = 'group' AND NOT p.disabled)
     SELECT EXISTS (SELECT 1 FROM holders WHERE kind <> 'group') AS ok`,
  );
  return row.ok === true;
}

/**
 * Runs a change that could take away the last way to administer rcflow and refuses it (409,
 * rolling the transaction back) when someone could administer everything before and nobody
 * can after. The unrestricted full_administrator assignments are locked first, so concurrent
 * guarded changes run one after the other and cannot each remove "the other" administrator.
 */
async function guardAdministration<T>(tx: EntityManager, change: () => Promise<T>): Promise<T> {
  await tx.query(
    `SELECT id FROM role_assignments WHERE role = 'full_administrator' AND collection_ids IS NULL ORDER BY id FOR UPDATE`,
  );
  const before = await someoneAdministersEverything(tx);
  const result = await change();
  if (before && !(await someoneAdministersEverything(tx))) {
    throw new Conflict(
      'refused: afterwards no enabled user or service would hold full_administrator over all collections, so nobody could administer rcflow',
    );
  }
  return result;
}

// =============================================================================================
// Role assignments

/** Grants `role` to a principal over `collectionIds` (null = every collection); each collection must exist. */
export async function assignRole(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  input: CreateRoleAssignmentInput,
): Promise<RoleAssignmentView> {
  const a = parseOrThrow(createRoleAssignmentSchema, input);
  const principal = await lockRow(tx, 'principals', a.principalId, 'SHARE');
  if (!principal) throw new UnprocessableRequest(`principalId ${a.principalId} is not a known principal`);
  const collectionIds = a.collectionIds === null ? null : a.collectionIds.map((c) => c.toLowerCase()).sort();
  if (collectionIds) {
    // FOR SHARE: a concurrent deleteCollection waits for this transaction and then sees the reference.
    const found: { id: string }[] = await tx.query('SELECT id FROM collections WHERE id = ANY($1::uuid[]) FOR SHARE', [collectionIds]);
    const known = new Set(found.map((r) => r.id));
    const missing = collectionIds.filter((c) => !known.has(c));
    if (missing.length > 0) {
      throw new UnprocessableRequest(`collectionIds name collections that do not exist: ${missing.join(', ')}`, { missing });
    }
  }
  const [duplicate] = await tx.query(
    'SELECT id FROM role_assignments WHERE principal_id = $1 AND role = $2 AND collection_ids IS NOT DISTINCT FROM $3::uuid[]',
    [a.principalId, a.role, collectionIds],
  );
  if (duplicate) {
    throw new Conflict(`${principal.name} already holds ${a.role} over this scope (role assignment ${duplicate.id})`, {
      roleAssignmentId: duplicate.id,
    });
  }
  const id = randomUUID();
  await tx.query('INSERT INTO role_assignments (id, principal_id, role, collection_ids) VALUES ($1, $2, $3, $4::uuid[])', [
    id,
    a.principalId,
    a.role,
    collectionIds,
  ]);
  await audit(tx, key, actorId, {
    stream: `role_assignment:${id}`,
    action: 'role_assignment.created',
    data: { principalId: a.principalId, principalName: principal.name, role: a.role, collectionIds },
  });
  return (await findRoleAssignment(tx, id))!;
}

/**
 * Removes a role assignment. The last full_administrator assignment over every collection cannot
 * be removed, nor one whose removal leaves no enabled user or service able to administer everything.
 */
export async function deleteRoleAssignment(tx: EntityManager, key: string, actorId: ActorId, id: string): Promise<RoleAssignmentView> {
  return guardAdministration(tx, async () => {
    if (!(await lockRow(tx, 'role_assignments', id, 'UPDATE'))) throw new NotFound('role assignment', id);
    const current = (await findRoleAssignment(tx, id))!;
    if (current.role === 'full_administrator' && current.collectionIds === null) {
      const [others] = await tx.query(
        `SELECT count(*)::int AS n FROM role_assignments WHERE role = 'full_administrator' AND collection_ids IS NULL AND id <> $1`,
        [id],
      );
      if (Number(others.n) === 0) {
        throw new Conflict('refused: this is the last full_administrator assignment over all collections; nobody could administer rcflow');
      }
    }
    await tx.query('DELETE FROM role_assignments WHERE id = $1', [id]);
    await audit(tx, key, actorId, {
      stream: `role_assignment:${id}`,
      action: 'role_assignment.deleted',
      data: { principalId: current.principalId, principalName: current.principalName, role: current.role, collectionIds: current.collectionIds },
    });
    return current;
  });
}

// =============================================================================================
// API keys

/**
 * Issues an API key for a user or service. The result's `key` is the only copy of the secret:
 * only its SHA-256 is stored and the audit event records neither.
 */
export async function createApiKey(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  input: CreateApiKeyInput,
): Promise<{ id: string; principalId: string; name: string; expiresAt: string | null; key: string }> {
  const k = parseOrThrow(createApiKeySchema, input);
  const principal = await lockRow(tx, 'principals', k.principalId, 'SHARE');
  if (!principal) throw new UnprocessableRequest(`principalId ${k.principalId} is not a known principal`);
  if (principal.kind === 'group') throw new UnprocessableRequest(`${principal.name} is a group; API keys belong to users and services`);
  if (principal.disabled) throw new UnprocessableRequest(`${principal.name} is disabled; enable it before issuing keys`);
  const id = randomUUID();
  const { secret, hash } = newKeySecret();
  const expiresAt = isoOrNull(k.expiresAt) ?? null;
  await tx.query('INSERT INTO api_keys (id, principal_id, name, secret_hash, expires_at) VALUES ($1, $2, $3, $4, $5)', [
    id,
    k.principalId,
    k.name,
    hash,
    expiresAt,
  ]);
  await audit(tx, key, actorId, {
    stream: `api_key:${id}`,
    action: 'api_key.created',
    data: { principalId: k.principalId, principalName: principal.name, name: k.name, expiresAt },
  });
  return { id, principalId: k.principalId, name: k.name, expiresAt, key: formatKey(id, secret) };
}

/** Revokes a key (idempotent: revoking a revoked key changes nothing and records nothing). */
export async function revokeApiKey(
  tx: EntityManager,
  key: string,
  actorId: ActorId,
  id: string,
): Promise<ApiKeyView & MembershipResult> {
  const updated = await tx.query(
    'UPDATE api_keys SET revoked_at = now(), updated_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING principal_id, name',
    [id],
  );
  const [row] = rowsOf(updated);
  if (row) {
    await audit(tx, key, actorId, {
      stream: `api_key:${id}`,
      action: 'api_key.revoked',
      data: { principalId: row.principal_id, name: row.name },
    });
  }
  const current = await findApiKey(tx, id);
  if (!current) throw new NotFound('API key', id);
  return { ...current, changed: !!row };
}
