import type { Permission, RoleGrant, RoleName } from './types';

// A Record makes the compiler reject a Permission added to the union but missing here.
const PERMISSION_SET: Record<Permission, true> = {
  'session.request': true,
  'session.request_on_behalf': true,
  'session.control': true,
  'session.read': true,
  'session.cancel': true,
  'audit.read': true,
  'admin.read': true,
  'admin.write': true,
};

/** Every permission, in declaration order. */
export const PERMISSIONS: readonly Permission[] = Object.freeze(Object.keys(PERMISSION_SET) as Permission[]);

/** What each role allows. */
export const ROLE_PERMISSIONS: Readonly<Record<RoleName, readonly Permission[]>> = Object.freeze({
  full_administrator: PERMISSIONS,
  remote_tools_operator: Object.freeze<Permission[]>(['session.request', 'session.control', 'session.read', 'session.cancel']),
  read_only_auditor: Object.freeze<Permission[]>(['session.read', 'audit.read', 'admin.read']),
  ticket_integration: Object.freeze<Permission[]>(['session.request', 'session.request_on_behalf', 'session.read', 'session.cancel']),
});

/** Whether `role` includes `permission`. Unknown role names grant nothing. */
export function roleHasPermission(role: RoleName, permission: Permission): boolean {
  return Object.hasOwn(ROLE_PERMISSIONS, role) && ROLE_PERMISSIONS[role].includes(permission);
}

/**
 * Whether `grants` hold `permission` over any of `collectionIds`.
 * A grant scoped `null` covers every collection, including devices in no collection.
 * With `collectionIds` undefined the question is "anywhere": any grant holding the permission over
 * a non-empty scope (an empty scope covers nothing).
 */
export function hasPermission(grants: RoleGrant[], permission: Permission, collectionIds?: string[]): boolean {
  return grants.some((grant) => {
    if (!roleHasPermission(grant.role, permission)) return false;
    if (grant.collectionIds === null) return true;
    if (collectionIds === undefined) return grant.collectionIds.length > 0;
    return grant.collectionIds.some((id) => collectionIds.includes(id));
  });
}

/**
 * The collections over which `grants` hold `permission`: null when unrestricted (some grant is
 * scoped to every collection), otherwise the union of the grants' collection ids without
 * duplicates, in first-seen order ([] when no grant holds it).
 */
export function scopeOf(grants: RoleGrant[], permission: Permission): string[] | null {
  const ids: string[] = [];
  for (const grant of grants) {
    if (!roleHasPermission(grant.role, permission)) continue;
    if (grant.collectionIds === null) return null;
    for (const id of grant.collectionIds) if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}
