import { IsNull } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { Principal, RoleAssignment } from '@rcflow/database';
import { createApiKey } from './api-keys.service';
import { createPrincipal } from './principals.service';
import { assignRole } from './role-assignments.service';

/** Names of the enabled principals holding full_administrator over all collections, sorted. */
export async function fullAdministrators(manager: EntityManager): Promise<string[]> {
  const rows = await manager.query<{ name: string }[]>(
    `SELECT p.name FROM role_assignments r JOIN principals p ON p.id = r.principal_id
      WHERE r.role = 'full_administrator' AND r.collection_ids IS NULL AND NOT p.disabled
      ORDER BY p.name`,
  );
  return rows.map((r) => r.name);
}

export class AdministratorExists extends Error {
  constructor(readonly names: string[]) {
    super(
      `a full administrator already exists (${names.join(', ')}); refusing to issue another key. ` +
        'Use an existing key to issue one through the API, or pass --force.',
    );
  }
}

/**
 * Creates (or reuses) the principal `name` as a full administrator over all collections and issues
 * it an API key. Refuses when an enabled full administrator already exists, unless `force`.
 */
export async function bootstrapAdmin(manager: EntityManager, auditKey: string, input: { name: string; force: boolean }): Promise<string> {
  // One bootstrap at a time: two concurrent runs must not both see "no administrator".
  await manager.query(`SELECT pg_advisory_xact_lock(hashtext('rcflow:bootstrap-admin'))`);
  const admins = await fullAdministrators(manager);
  if (admins.length && !input.force) throw new AdministratorExists(admins);
  const ctx = { manager, auditKey, actorId: null };
  const { name } = input;
  const existing = await manager.getRepository(Principal).createQueryBuilder('p').where('lower(p.name) = lower(:name)', { name }).getOne();
  const id = existing?.id ?? (await createPrincipal(ctx, { name, kind: 'user' })).id;
  const granted = await manager
    .getRepository(RoleAssignment)
    .existsBy({ principalId: id, role: 'full_administrator', collectionIds: IsNull() });
  if (!granted) await assignRole(ctx, { principalId: id, role: 'full_administrator', collectionIds: null });
  return (await createApiKey(ctx, { principalId: id, name: 'bootstrap' })).key;
}
