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
import { queryPrepared } from './prepared';

/** A client settings row as the eligibility facts read it. */
export interface SettingsRow {
  id: string;
  name: string;
  priority: number;
  is_default: boolean;
  remote_tools: SettingsSet['remoteTools'];
}
/** A device row with its collection ids, as the eligibility facts read it. */
export interface DeviceRow {
  id: string;
  hostname: string;
  enrolled: boolean;
  retired: boolean;
  domain_joined: boolean;
  os_family: DeviceFacts['osFamily'];
  os_build: string;
  agent_version: string | null;
  last_heartbeat_at: string | Date | null;
  logged_on_user: string | null;
  locked: boolean;
  local_administrators: string[] | null;
  collection_ids: string[] | null;
}
interface PrincipalRow {
  id: string;
  name: string;
  kind: PrincipalFacts['kind'];
  disabled: boolean;
  group_names: string[] | null;
  grants: { role: RoleGrant['role']; collection_ids: string[] | null }[] | null;
}

/*
 * The facts as SQL expressions, each one json value (or null) for the id expression given, so that
 * one statement can read everything a decision needs and the single loaders share the same SQL.
 */
const settingsRowsSql = (deviceId: string) => `(SELECT COALESCE(json_agg(r), '[]') FROM (
    SELECT s.id, s.name, s.priority, s.is_default, s.remote_tools FROM client_settings s WHERE s.is_default
    UNION
    SELECT s.id, s.name, s.priority, s.is_default, s.remote_tools FROM client_settings s
      JOIN settings_deployments sd ON sd.settings_id = s.id
      JOIN collection_members cm ON cm.collection_id = sd.collection_id
     WHERE cm.device_id = ${deviceId}) r)`;

/** The device columns of DeviceRow for the devices row `d` (shared with the access review). */
export const DEVICE_FACTS_COLUMNS = `d.id, d.hostname, d.enrolled, d.retired, d.domain_joined, d.os_family, d.os_build, d.agent_version,
           d.last_heartbeat_at, d.logged_on_user, d.locked, d.local_administrators,
           COALESCE((SELECT array_agg(m.collection_id) FROM collection_members m WHERE m.device_id = d.id), '{}') AS collection_ids`;

const deviceSql = (deviceId: string) => `(SELECT row_to_json(r) FROM (
    SELECT ${DEVICE_FACTS_COLUMNS} FROM devices d WHERE d.id = ${deviceId}) r)`;

/**
 * The principal, the groups it belongs to (nested groups followed) and the grants of both. A
 * disabled group passes nothing on: neither its own name and grants nor those of the groups it is
 * in, so the walk stops at it (a group reached another way through enabled groups still counts).
 */
const principalSql = (principalId: string) =>
  `(SELECT row_to_json(r) FROM (
    SELECT p.id, p.name, p.kind, p.disabled,
           (SELECT array_agg(gp.name) FROM groups_of(p.id) gp) AS group_names,
           (SELECT json_agg(json_build_object('role', ra.role, 'collection_ids', ra.collection_ids)) FROM role_assignments ra
             WHERE ra.principal_id = p.id OR ra.principal_id IN (SELECT gp.id FROM groups_of(p.id) gp)) AS grants
      FROM principals p WHERE p.id = ${principalId}) r)`.replace(
    /groups_of\(p\.id\) gp/g,
    `(WITH RECURSIVE g(id) AS (
       SELECT gm.group_id FROM group_members gm JOIN principals e ON e.id = gm.group_id AND NOT e.disabled WHERE gm.member_id = p.id
       UNION SELECT gm.group_id FROM group_members gm JOIN g ON gm.member_id = g.id JOIN principals e ON e.id = gm.group_id AND NOT e.disabled)
     SELECT pg.id, pg.name FROM g JOIN principals pg ON pg.id = g.id) gp`,
  );

/**
 * The effective settings from the rows of the sets that apply to a device (the default among them),
 * each checked against the remote-tools schema.
 */
export function settingsOf(rows: SettingsRow[]): EffectiveSettings {
  if (!rows.some((r) => r.is_default)) {
    throw new Error('no default client settings exist; the initial migration or seed creates them');
  }
  return mergeSettings(
    rows.map((r) => {
      // Stored settings were validated on the way in; anything else was written around the API.
      const parsed = remoteToolsPartialSchema.safeParse(r.remote_tools);
      if (!parsed.success) {
        throw new Error(
          `client settings "${r.name}" (${r.id}) hold invalid remote-tools values: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      }
      return { id: r.id, name: r.name, order: r.priority, isDefault: r.is_default, remoteTools: parsed.data };
    }),
  );
}

/** A device row as eligibility sees it. */
export function deviceOf(d: DeviceRow | null): DeviceFacts | null {
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

function principalOf(p: PrincipalRow | null): PrincipalFacts | null {
  if (!p) return null;
  return {
    id: p.id,
    name: p.name,
    kind: p.kind,
    disabled: p.disabled,
    groupNames: p.group_names ?? [],
    grants: (p.grants ?? []).map((g) => ({ role: g.role, collectionIds: g.collection_ids })),
  };
}

/** The default set and every custom set deployed to a collection holding the device, merged. */
export async function loadEffectiveSettings(manager: EntityManager, deviceId: string | null): Promise<EffectiveSettings> {
  const [row] = await manager.query<[{ settings: SettingsRow[] }]>(`SELECT ${settingsRowsSql('$1')} AS settings`, [deviceId]);
  return settingsOf(row.settings);
}

/**
 * A principal with the names of every group it belongs to (nested groups followed) and the role
 * grants it holds directly or through those groups.
 */
export async function loadPrincipalFacts(manager: EntityManager, principalId: string): Promise<PrincipalFacts | null> {
  const [row] = await manager.query<[{ principal: PrincipalRow | null }]>(`SELECT ${principalSql('$1')} AS principal`, [principalId]);
  return principalOf(row.principal);
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

/** Everything the ten checks need, read from the database in one statement. */
export async function loadEligibilityInput(
  manager: EntityManager,
  q: EligibilityQuery,
): Promise<EligibilityInput | { missing: 'requester' }> {
  const [row]: {
    device: DeviceRow | null;
    requester: PrincipalRow | null;
    viewer: PrincipalRow | null;
    settings: SettingsRow[] | null;
    controlling: string[];
  }[] = await queryPrepared(
    manager,
    `SELECT ${deviceSql('$1')} AS device, ${principalSql('$2')} AS requester,
              CASE WHEN $3::uuid = $2::uuid THEN NULL ELSE ${principalSql('$3')} END AS viewer,
              CASE WHEN EXISTS (SELECT 1 FROM devices WHERE id = $1) THEN ${settingsRowsSql('$1')} END AS settings,
              ARRAY(SELECT id FROM sessions WHERE device_id = $1 AND state = ANY($4) AND id IS DISTINCT FROM $5) AS controlling`,
    [q.deviceId, q.requesterId, q.viewerId, CONTROLLING_STATES, q.sessionId],
  );
  if (!row) throw new Error('the eligibility facts statement answered no row');
  const requester = principalOf(row.requester);
  if (!requester) return { missing: 'requester' };
  const device = deviceOf(row.device);
  return {
    now: q.now,
    device,
    requester,
    viewer: q.viewerId === q.requesterId ? requester : principalOf(row.viewer),
    ask: q.ask,
    settings: device ? settingsOf(row.settings ?? []) : null,
    controllingSessionIds: device ? row.controlling : [],
    policy: q.policy,
  };
}
