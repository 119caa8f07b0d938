import type { EntityManager } from 'typeorm';
import {
  DeviceFacts,
  EffectiveSettings,
  EligibilityInput,
  EligibilityPolicy,
  PrincipalFacts,
  RoleGrant,
  SessionAsk,
  SettingsSet,
  mergeSettings,
  remoteToolsPartialSchema,
  CONTROLLING_STATES,
} from '@rcflow/domain';

/** The default set and every custom set deployed to a collection holding the device, merged. */
export async function loadEffectiveSettings(manager: EntityManager, deviceId: string | null): Promise<EffectiveSettings> {
  const rows: { id: string; name: string; priority: number; is_default: boolean; remote_tools: SettingsSet['remoteTools'] }[] =
    await manager.query(
      `SELECT s.id, s.name, s.priority, s.is_default, s.remote_tools FROM client_settings s WHERE s.is_default
       UNION
       SELECT s.id, s.name, s.priority, s.is_default, s.remote_tools FROM client_settings s
         JOIN settings_deployments d ON d.settings_id = s.id
         JOIN collection_members m ON m.collection_id = d.collection_id
        WHERE m.device_id = $1`,
      [deviceId],
    );
  if (!rows.some((r) => r.is_default)) {
    throw new Error('no default client settings exist; the initial migration or seed creates them');
  }
  return mergeSettings(
    rows.map((r) => {
      // Stored settings were validated on the way in; anything else was written around the API.
      const parsed = remoteToolsPartialSchema.safeParse(r.remote_tools);
      if (!parsed.success) {
        throw new Error(`client settings "${r.name}" (${r.id}) hold invalid remote-tools values: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      }
      return { id: r.id, name: r.name, order: r.priority, isDefault: r.is_default, remoteTools: parsed.data };
    }),
  );
}

export async function loadDeviceFacts(manager: EntityManager, deviceId: string): Promise<DeviceFacts | null> {
  const rows = await manager.query(
    `SELECT d.*, COALESCE(array_agg(m.collection_id) FILTER (WHERE m.collection_id IS NOT NULL), '{}') AS collection_ids
       FROM devices d LEFT JOIN collection_members m ON m.device_id = d.id
      WHERE d.id = $1 GROUP BY d.id`,
    [deviceId],
  );
  const d = rows[0];
  if (!d) return null;
  return {
    id: d.id,
    hostname: d.hostname,
    enrolled: d.enrolled,
    retired: d.retired,
    domainJoined: d.domain_joined,
    osFamily: d.os_family,
    osBuild: d.os_build,
    agentVersion: d.agent_version,
    lastHeartbeatAt: d.last_heartbeat_at ? new Date(d.last_heartbeat_at) : null,
    loggedOnUser: d.logged_on_user,
    locked: d.locked,
    localAdministrators: d.local_administrators ?? [],
    collectionIds: d.collection_ids ?? [],
  };
}

/**
 * A principal with the names of every group it belongs to (nested groups followed) and the role
 * grants it holds directly or through those groups.
 */
export async function loadPrincipalFacts(manager: EntityManager, principalId: string): Promise<PrincipalFacts | null> {
  const [p] = await manager.query('SELECT id, name, kind, disabled FROM principals WHERE id = $1', [principalId]);
  if (!p) return null;
  const groups: { id: string; name: string }[] = await manager.query(
    `WITH RECURSIVE g(id) AS (
        SELECT group_id FROM group_members WHERE member_id = $1
        UNION SELECT gm.group_id FROM group_members gm JOIN g ON gm.member_id = g.id)
     SELECT p.id, p.name FROM g JOIN principals p ON p.id = g.id WHERE NOT p.disabled`,
    [principalId],
  );
  const grants: { role: RoleGrant['role']; collection_ids: string[] | null }[] = await manager.query(
    'SELECT role, collection_ids FROM role_assignments WHERE principal_id = ANY($1)',
    [[principalId, ...groups.map((g) => g.id)]],
  );
  return {
    id: p.id,
    name: p.name,
    kind: p.kind,
    disabled: p.disabled,
    groupNames: groups.map((g) => g.name),
    grants: grants.map((g) => ({ role: g.role, collectionIds: g.collection_ids })),
  };
}

export async function loadControllingSessionIds(
  manager: EntityManager,
  deviceId: string,
  excludeSessionId: string | null,
): Promise<string[]> {
  const rows: { id: string }[] = await manager.query(
    'SELECT id FROM sessions WHERE device_id = $1 AND state = ANY($2) AND id IS DISTINCT FROM $3',
    [deviceId, CONTROLLING_STATES, excludeSessionId],
  );
  return rows.map((r) => r.id);
}

export interface EligibilityQuery {
  deviceId: string;
  requesterId: string;
  viewerId: string;
  ask: SessionAsk;
  /** The session being evaluated, so it does not block itself. */
  sessionId: string | null;
  now: Date;
  policy: EligibilityPolicy;
}

/** Everything the ten checks need, read from the database. */
export async function loadEligibilityInput(
  manager: EntityManager,
  q: EligibilityQuery,
): Promise<EligibilityInput | { missing: 'requester' }> {
  const [device, requester, viewer] = await Promise.all([
    loadDeviceFacts(manager, q.deviceId),
    loadPrincipalFacts(manager, q.requesterId),
    q.viewerId === q.requesterId ? null : loadPrincipalFacts(manager, q.viewerId),
  ]);
  if (!requester) return { missing: 'requester' };
  const [settings, controllingSessionIds] = device
    ? await Promise.all([loadEffectiveSettings(manager, device.id), loadControllingSessionIds(manager, device.id, q.sessionId)])
    : [null, []];
  return {
    now: q.now,
    device,
    requester,
    viewer: q.viewerId === q.requesterId ? requester : viewer,
    ask: q.ask,
    settings,
    controllingSessionIds,
    policy: q.policy,
  };
}
