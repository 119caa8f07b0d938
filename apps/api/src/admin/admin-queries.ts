import { rowsOf as rowsOfResult } from '@rcflow/database';
import type { EntityManager } from 'typeorm';
import type { RemoteToolsSettings, RoleName } from '@rcflow/domain';
import { ValidationFailed } from '@rcflow/domain';
import { decodeCursor, encodeCursor } from '../common/validation';

/*
 * Reads of administration objects as the API returns them (camelCase, ISO timestamps), shared
 * by the HTTP services and by admin-store (which returns the object it wrote). Lists page by
 * keyset over (created_at, id); the cursor carries created_at in whole microseconds so rows
 * written in one transaction (same now()) and sub-millisecond timestamps page exactly.
 */

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface DeviceView {
  id: string;
  hostname: string;
  fqdn: string | null;
  domainJoined: boolean;
  domain: string | null;
  osFamily: 'windows' | 'linux' | 'macos';
  osBuild: string;
  agentVersion: string | null;
  lastHeartbeatAt: string | null;
  loggedOnUser: string | null;
  locked: boolean;
  localAdministrators: string[];
  enrolled: boolean;
  retired: boolean;
  appliedSettingsHash: string | null;
  collectionIds: string[];
  createdAt: string;
  updatedAt: string;
}

export interface CollectionView {
  id: string;
  name: string;
  description: string | null;
  memberCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface ClientSettingsView {
  id: string;
  name: string;
  isDefault: boolean;
  order: number;
  remoteTools: Partial<RemoteToolsSettings>;
  /** Collections the set is deployed to (always [] for the default set, which applies everywhere). */
  collectionIds: string[];
  createdAt: string;
  updatedAt: string;
}

export interface PrincipalRef {
  id: string;
  name: string;
  kind: 'user' | 'group' | 'service';
}

export interface PrincipalView extends PrincipalRef {
  displayName: string | null;
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface PrincipalDetailView extends PrincipalView {
  /** Groups the principal is a direct member of. */
  groups: PrincipalRef[];
  /** Every group it belongs to, directly or through nested groups (what eligibility uses). */
  allGroups: PrincipalRef[];
  /** Direct members; only present for groups. */
  members?: PrincipalRef[];
}

export interface RoleAssignmentView {
  id: string;
  principalId: string;
  principalName: string | null;
  role: RoleName;
  /** null = every collection. */
  collectionIds: string[] | null;
  createdAt: string;
  updatedAt: string;
}

export interface ApiKeyView {
  id: string;
  principalId: string;
  name: string;
  expiresAt: string | null;
  revokedAt: string | null;
  status: 'active' | 'expired' | 'revoked';
  createdAt: string;
}

type Row = Record<string, any>;

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());
const isoReq = (v: unknown): string => new Date(v as string).toISOString();

/** Raw query rows as the admin views read them (see rowsOf in @rcflow/database). */
export function rowsOf(result: unknown): Row[] {
  return rowsOfResult<Row>(result);
}

// --------------------------------------------------------------------------------------------
// Keyset pagination

const cursorKey = (alias: string) => `(extract(epoch FROM ${alias}.created_at) * 1000000)::bigint`;
const cursorColumn = (alias: string) => `${cursorKey(alias)}::text AS cursor_us`;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class Query {
  readonly where: string[] = [];
  readonly params: unknown[] = [];
  /** Adds a condition; each `?` becomes the next positional parameter. */
  add(sql: string, ...values: unknown[]): this {
    let i = 0;
    this.where.push(
      sql.replace(/\?/g, () => {
        this.params.push(values[i++]);
        return `$${this.params.length}`;
      }),
    );
    return this;
  }
  after(alias: string, cursor: string | undefined): this {
    if (!cursor) return this;
    const [us, id] = decodeCursor(cursor, 2);
    if (typeof us !== 'string' || !/^\d{1,18}$/.test(us) || typeof id !== 'string' || !UUID_RE.test(id)) {
      throw new ValidationFailed('invalid cursor: use the nextCursor of a previous page');
    }
    return this.add(`(${cursorKey(alias)}, ${alias}.id) > (?::bigint, ?::uuid)`, us, id);
  }
  whereSql(): string {
    return this.where.length ? `WHERE ${this.where.join(' AND ')}` : '';
  }
}

function page<T>(rows: Row[], limit: number, view: (r: Row) => T): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(view),
    nextCursor: rows.length > limit && last ? encodeCursor([String(last.cursor_us), String(last.id)]) : null,
  };
}

/** A LIKE pattern matching values that start with `prefix`, case-insensitively (with ILIKE). */
export function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

// --------------------------------------------------------------------------------------------
// Devices

const DEVICE_COLUMNS = `d.id, d.hostname, d.fqdn, d.domain_joined, d.domain, d.os_family, d.os_build, d.agent_version,
  d.last_heartbeat_at, d.logged_on_user, d.locked, to_jsonb(d.local_administrators) AS local_administrators, d.enrolled,
  d.retired, d.applied_settings_hash, d.created_at, d.updated_at,
  to_jsonb(ARRAY(SELECT m.collection_id FROM collection_members m WHERE m.device_id = d.id ORDER BY m.collection_id)) AS collection_ids`;

export function deviceView(r: Row): DeviceView {
  return {
    id: r.id,
    hostname: r.hostname,
    fqdn: r.fqdn,
    domainJoined: r.domain_joined,
    domain: r.domain,
    osFamily: r.os_family,
    osBuild: r.os_build,
    agentVersion: r.agent_version,
    lastHeartbeatAt: iso(r.last_heartbeat_at),
    loggedOnUser: r.logged_on_user,
    locked: r.locked,
    localAdministrators: r.local_administrators ?? [],
    enrolled: r.enrolled,
    retired: r.retired,
    appliedSettingsHash: r.applied_settings_hash,
    collectionIds: r.collection_ids ?? [],
    createdAt: isoReq(r.created_at),
    updatedAt: isoReq(r.updated_at),
  };
}

/** Devices a scope covers: members of one of its collections (null = every device). */
const inScope = (q: Query, scope: string[] | null) =>
  scope === null
    ? q
    : q.add('EXISTS (SELECT 1 FROM collection_members sm WHERE sm.device_id = d.id AND sm.collection_id = ANY(?::uuid[]))', scope);

export async function findDevice(m: EntityManager, id: string, scope: string[] | null = null): Promise<DeviceView | null> {
  const q = inScope(new Query().add('d.id = ?', id), scope);
  const [row] = await m.query(`SELECT ${DEVICE_COLUMNS} FROM devices d ${q.whereSql()}`, q.params);
  return row ? deviceView(row) : null;
}

export async function listDevices(
  m: EntityManager,
  f: { hostname?: string; collectionId?: string; limit: number; cursor?: string; scope: string[] | null },
): Promise<Page<DeviceView>> {
  const q = inScope(new Query(), f.scope);
  if (f.hostname) q.add(`d.hostname ILIKE ? ESCAPE '\\'`, prefixPattern(f.hostname));
  if (f.collectionId) {
    q.add('EXISTS (SELECT 1 FROM collection_members fm WHERE fm.device_id = d.id AND fm.collection_id = ?)', f.collectionId);
  }
  q.after('d', f.cursor);
  const rows = await m.query(
    `SELECT ${DEVICE_COLUMNS}, ${cursorColumn('d')} FROM devices d ${q.whereSql()}
      ORDER BY d.created_at, d.id LIMIT ${f.limit + 1}`,
    q.params,
  );
  return page(rows, f.limit, deviceView);
}

// --------------------------------------------------------------------------------------------
// Collections

const COLLECTION_COLUMNS = `c.id, c.name, c.description, c.created_at, c.updated_at,
  (SELECT count(*) FROM collection_members m WHERE m.collection_id = c.id)::int AS member_count`;

export function collectionView(r: Row): CollectionView {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    memberCount: Number(r.member_count),
    createdAt: isoReq(r.created_at),
    updatedAt: isoReq(r.updated_at),
  };
}

export async function findCollection(m: EntityManager, id: string, scope: string[] | null = null): Promise<CollectionView | null> {
  if (scope !== null && !scope.includes(id)) return null;
  const [row] = await m.query(`SELECT ${COLLECTION_COLUMNS} FROM collections c WHERE c.id = $1`, [id]);
  return row ? collectionView(row) : null;
}

export async function listCollections(
  m: EntityManager,
  f: { limit: number; cursor?: string; scope: string[] | null },
): Promise<Page<CollectionView>> {
  const q = new Query();
  if (f.scope !== null) q.add('c.id = ANY(?::uuid[])', f.scope);
  q.after('c', f.cursor);
  const rows = await m.query(
    `SELECT ${COLLECTION_COLUMNS}, ${cursorColumn('c')} FROM collections c ${q.whereSql()}
      ORDER BY c.created_at, c.id LIMIT ${f.limit + 1}`,
    q.params,
  );
  return page(rows, f.limit, collectionView);
}

// --------------------------------------------------------------------------------------------
// Client settings

const SETTINGS_COLUMNS = `s.id, s.name, s.is_default, s.priority, s.remote_tools, s.created_at, s.updated_at,
  to_jsonb(ARRAY(SELECT dep.collection_id FROM settings_deployments dep WHERE dep.settings_id = s.id ORDER BY dep.collection_id)) AS collection_ids`;

export function clientSettingsView(r: Row): ClientSettingsView {
  return {
    id: r.id,
    name: r.name,
    isDefault: r.is_default,
    order: Number(r.priority),
    remoteTools: r.remote_tools ?? {},
    collectionIds: r.collection_ids ?? [],
    createdAt: isoReq(r.created_at),
    updatedAt: isoReq(r.updated_at),
  };
}

export async function findClientSettings(m: EntityManager, id: string): Promise<ClientSettingsView | null> {
  const [row] = await m.query(`SELECT ${SETTINGS_COLUMNS} FROM client_settings s WHERE s.id = $1`, [id]);
  return row ? clientSettingsView(row) : null;
}

/** Every set, in the order the merge applies them: lowest order first, the default (10000) last. */
export async function listClientSettings(m: EntityManager): Promise<ClientSettingsView[]> {
  const rows = await m.query(`SELECT ${SETTINGS_COLUMNS} FROM client_settings s ORDER BY s.is_default, s.priority, s.id`);
  return rows.map(clientSettingsView);
}

// --------------------------------------------------------------------------------------------
// Principals

const PRINCIPAL_COLUMNS = 'p.id, p.name, p.kind, p.display_name, p.disabled, p.created_at, p.updated_at';

export function principalView(r: Row): PrincipalView {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    displayName: r.display_name,
    disabled: r.disabled,
    createdAt: isoReq(r.created_at),
    updatedAt: isoReq(r.updated_at),
  };
}

const ref = (r: Row): PrincipalRef => ({ id: r.id, name: r.name, kind: r.kind });

export async function findPrincipal(m: EntityManager, id: string): Promise<PrincipalView | null> {
  const [row] = await m.query(`SELECT ${PRINCIPAL_COLUMNS} FROM principals p WHERE p.id = $1`, [id]);
  return row ? principalView(row) : null;
}

export async function findPrincipalDetail(m: EntityManager, id: string): Promise<PrincipalDetailView | null> {
  const p = await findPrincipal(m, id);
  if (!p) return null;
  const groups = await m.query(
    `SELECT p.id, p.name, p.kind FROM group_members gm JOIN principals p ON p.id = gm.group_id
      WHERE gm.member_id = $1 ORDER BY lower(p.name), p.id`,
    [id],
  );
  const allGroups = await m.query(
    `WITH RECURSIVE g(id) AS (
        SELECT group_id FROM group_members WHERE member_id = $1
        UNION SELECT gm.group_id FROM group_members gm JOIN g ON gm.member_id = g.id)
     SELECT p.id, p.name, p.kind FROM g JOIN principals p ON p.id = g.id WHERE p.id <> $1 ORDER BY lower(p.name), p.id`,
    [id],
  );
  const detail: PrincipalDetailView = { ...p, groups: groups.map(ref), allGroups: allGroups.map(ref) };
  if (p.kind === 'group') {
    const members = await m.query(
      `SELECT p.id, p.name, p.kind FROM group_members gm JOIN principals p ON p.id = gm.member_id
        WHERE gm.group_id = $1 ORDER BY lower(p.name), p.id`,
      [id],
    );
    detail.members = members.map(ref);
  }
  return detail;
}

export async function listPrincipals(
  m: EntityManager,
  f: { kind?: string; name?: string; limit: number; cursor?: string },
): Promise<Page<PrincipalView>> {
  const q = new Query();
  if (f.kind) q.add('p.kind = ?', f.kind);
  if (f.name) q.add(`p.name ILIKE ? ESCAPE '\\'`, prefixPattern(f.name));
  q.after('p', f.cursor);
  const rows = await m.query(
    `SELECT ${PRINCIPAL_COLUMNS}, ${cursorColumn('p')} FROM principals p ${q.whereSql()}
      ORDER BY p.created_at, p.id LIMIT ${f.limit + 1}`,
    q.params,
  );
  return page(rows, f.limit, principalView);
}

// --------------------------------------------------------------------------------------------
// Role assignments

const ROLE_ASSIGNMENT_COLUMNS = `r.id, r.principal_id, p.name AS principal_name, r.role, to_jsonb(r.collection_ids) AS collection_ids,
  r.created_at, r.updated_at`;

export function roleAssignmentView(r: Row): RoleAssignmentView {
  return {
    id: r.id,
    principalId: r.principal_id,
    principalName: r.principal_name ?? null,
    role: r.role,
    collectionIds: r.collection_ids ?? null,
    createdAt: isoReq(r.created_at),
    updatedAt: isoReq(r.updated_at),
  };
}

export async function findRoleAssignment(m: EntityManager, id: string): Promise<RoleAssignmentView | null> {
  const [row] = await m.query(
    `SELECT ${ROLE_ASSIGNMENT_COLUMNS} FROM role_assignments r LEFT JOIN principals p ON p.id = r.principal_id WHERE r.id = $1`,
    [id],
  );
  return row ? roleAssignmentView(row) : null;
}

export async function listRoleAssignments(
  m: EntityManager,
  f: { principalId?: string; limit: number; cursor?: string },
): Promise<Page<RoleAssignmentView>> {
  const q = new Query();
  if (f.principalId) q.add('r.principal_id = ?', f.principalId);
  q.after('r', f.cursor);
  const rows = await m.query(
    `SELECT ${ROLE_ASSIGNMENT_COLUMNS}, ${cursorColumn('r')} FROM role_assignments r LEFT JOIN principals p ON p.id = r.principal_id
      ${q.whereSql()} ORDER BY r.created_at, r.id LIMIT ${f.limit + 1}`,
    q.params,
  );
  return page(rows, f.limit, roleAssignmentView);
}

// --------------------------------------------------------------------------------------------
// API keys (the secret hash is never selected)

const API_KEY_COLUMNS = `k.id, k.principal_id, k.name, k.expires_at, k.revoked_at, k.created_at,
  CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked' WHEN k.expires_at IS NOT NULL AND k.expires_at <= now() THEN 'expired'
       ELSE 'active' END AS status`;

export function apiKeyView(r: Row): ApiKeyView {
  return {
    id: r.id,
    principalId: r.principal_id,
    name: r.name,
    expiresAt: iso(r.expires_at),
    revokedAt: iso(r.revoked_at),
    status: r.status,
    createdAt: isoReq(r.created_at),
  };
}

export async function findApiKey(m: EntityManager, id: string): Promise<ApiKeyView | null> {
  const [row] = await m.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys k WHERE k.id = $1`, [id]);
  return row ? apiKeyView(row) : null;
}

export async function listApiKeys(
  m: EntityManager,
  f: { principalId?: string; limit: number; cursor?: string },
): Promise<Page<ApiKeyView>> {
  const q = new Query();
  if (f.principalId) q.add('k.principal_id = ?', f.principalId);
  q.after('k', f.cursor);
  const rows = await m.query(
    `SELECT ${API_KEY_COLUMNS}, ${cursorColumn('k')} FROM api_keys k ${q.whereSql()}
      ORDER BY k.created_at, k.id LIMIT ${f.limit + 1}`,
    q.params,
  );
  return page(rows, f.limit, apiKeyView);
}
