import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DEVICE_FACTS_COLUMNS, DeviceRow, SettingsRow, deviceInScopeSql, deviceOf, settingsOf } from '@rcflow/database';
import {
  buildDirectory,
  type AccessDirectory,
  type DeviceFacts,
  type DirectoryAssignment,
  type DirectoryPrincipal,
  type EffectiveSettings,
} from '@rcflow/domain';

/** Everything but the devices, read once per request. */
export interface ReviewWorld {
  dir: AccessDirectory;
  /** A device's effective settings from its collections (memoised per combination of sets). */
  settingsFor(device: DeviceFacts): { settings: EffectiveSettings; key: string };
}

/**
 * The reads of the access review. Hot path (a principal's review pages through every device in
 * scope), so raw SQL: one statement for principals, groups, assignments, collections and
 * settings; the devices in keyset pages with their collections and local administrators.
 */
@Injectable()
export class AccessReviewStore {
  constructor(private readonly dataSource: DataSource) {}

  async world(): Promise<ReviewWorld> {
    const [row] = await this.dataSource.query<
      {
        principals: DirectoryPrincipal[];
        memberships: { groupId: string; memberId: string }[];
        assignments: DirectoryAssignment[];
        collections: { id: string; name: string }[];
        settings: SettingsRow[];
        deployments: { settingsId: string; collectionId: string }[];
      }[]
    >(
      `SELECT
        (SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name, 'kind', kind, 'disabled', disabled)), '[]') FROM principals) AS principals,
        (SELECT COALESCE(json_agg(json_build_object('groupId', group_id, 'memberId', member_id)), '[]') FROM group_members) AS memberships,
        (SELECT COALESCE(json_agg(json_build_object('id', id, 'principalId', principal_id, 'role', role, 'collectionIds', collection_ids)), '[]')
           FROM role_assignments) AS assignments,
        (SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name)), '[]') FROM collections) AS collections,
        (SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name, 'priority', priority, 'is_default', is_default,
           'remote_tools', remote_tools)), '[]') FROM client_settings) AS settings,
        (SELECT COALESCE(json_agg(json_build_object('settingsId', settings_id, 'collectionId', collection_id)), '[]')
           FROM settings_deployments) AS deployments`,
    );
    if (!row) throw new Error('the access review statement answered no row');
    const dir = buildDirectory(row.principals, row.memberships, row.assignments, row.collections);
    const setsById = new Map(row.settings.map((s) => [s.id, s]));
    const defaults = row.settings.filter((s) => s.is_default);
    const deployedTo = new Map<string, string[]>();
    for (const d of row.deployments) {
      const list = deployedTo.get(d.collectionId);
      if (list) list.push(d.settingsId);
      else deployedTo.set(d.collectionId, [d.settingsId]);
    }
    const memo = new Map<string, EffectiveSettings>();
    return {
      dir,
      settingsFor(device) {
        // The same sets as the eligibility facts: the default, and every custom set deployed to a collection holding the device.
        const ids = new Set<string>();
        for (const c of device.collectionIds) for (const s of deployedTo.get(c) ?? []) if (!setsById.get(s)?.is_default) ids.add(s);
        const key = [...ids].sort().join(',');
        let settings = memo.get(key);
        if (!settings) {
          settings = settingsOf([...defaults, ...[...ids].map((id) => setsById.get(id)!)]);
          memo.set(key, settings);
        }
        return { settings, key };
      },
    };
  }

  /** The device when it exists and `scope` (the caller's) covers it. */
  async device(id: string, scope: readonly string[] | null): Promise<DeviceFacts | null> {
    const params: unknown[] = [id];
    const inScope = deviceInScopeSql('d.id', scope, (v) => `$${params.push(v)}`);
    const [row] = await this.dataSource.query<DeviceRow[]>(
      `SELECT ${DEVICE_FACTS_COLUMNS} FROM devices d WHERE d.id = $1 AND ${inScope}`,
      params,
    );
    return deviceOf(row ?? null);
  }

  /** Devices after `after` in id order that both scopes cover (null = unrestricted). */
  async devicePage(
    after: string | null,
    callerScope: readonly string[] | null,
    principalScope: readonly string[] | null,
    limit: number,
  ): Promise<DeviceFacts[]> {
    const params: unknown[] = [];
    const p = (v: unknown) => `$${params.push(v)}`;
    const where = [deviceInScopeSql('d.id', callerScope, p), deviceInScopeSql('d.id', principalScope, p)];
    if (after !== null) where.push(`d.id > ${p(after)}::uuid`);
    const rows = await this.dataSource.query<DeviceRow[]>(
      `SELECT ${DEVICE_FACTS_COLUMNS} FROM devices d WHERE ${where.join(' AND ')} ORDER BY d.id LIMIT ${limit}`,
      params,
    );
    return rows.map((r) => deviceOf(r)!);
  }
}
