import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager, In, IsNull } from 'typeorm';
import { Collection, GroupMember, Principal, RoleAssignment } from '@rcflow/database';
import { Conflict, NotFound, PrincipalFacts, RoleName, UnprocessableRequest } from '@rcflow/domain';
import { parseOrThrow } from '../common/validation';
import { AccessRevocation } from './access-revocation.service';
import { AdminConnection, AdminContext, recordAudit } from './admin-context';
import { Page, PageRequest, keysetPage } from './admin-page';
import { CreateRoleAssignmentInput, createRoleAssignmentSchema } from './admin.schemas';

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

/** The views of `assignments`, the names of their principals loaded in one query. */
async function assignmentViews(manager: EntityManager, assignments: RoleAssignment[]): Promise<RoleAssignmentView[]> {
  if (assignments.length === 0) return [];
  const principals = await manager.getRepository(Principal).find({
    select: { id: true, name: true },
    where: { id: In([...new Set(assignments.map((a) => a.principalId))]) },
  });
  return assignments.map((a) => ({
    id: a.id,
    principalId: a.principalId,
    principalName: principals.find((p) => p.id === a.principalId)?.name ?? null,
    role: a.role,
    collectionIds: a.collectionIds ?? null,
    createdAt: a.createdAt.toISOString(),
    updatedAt: a.updatedAt.toISOString(),
  }));
}

export async function findRoleAssignment(manager: EntityManager, id: string): Promise<RoleAssignmentView | null> {
  const assignment = await manager.getRepository(RoleAssignment).findOneBy({ id });
  return assignment ? (await assignmentViews(manager, [assignment]))[0]! : null;
}

export function listRoleAssignments(manager: EntityManager, f: PageRequest & { principalId?: string }): Promise<Page<RoleAssignmentView>> {
  const qb = manager.getRepository(RoleAssignment).createQueryBuilder('r');
  if (f.principalId) qb.andWhere('r.principalId = :principalId', { principalId: f.principalId });
  return keysetPage(qb, 'r', f, (assignments) => assignmentViews(manager, assignments));
}

// ---------------------------------------------------------------------------------------------
// Lock-out protection

/**
 * Whether some enabled user or service holds full_administrator over every collection, directly
 * or through enabled groups (nested at any depth) — i.e. whether someone can still administer rcflow.
 */
async function someoneAdministersEverything(manager: EntityManager): Promise<boolean> {
  const holders = await manager.getRepository(RoleAssignment).find({
    select: { id: true, principalId: true },
    where: { role: 'full_administrator', collectionIds: IsNull() },
  });
  const seen = new Set(holders.map((a) => a.principalId));
  let frontier = [...seen];
  while (frontier.length > 0) {
    const enabled = await manager.getRepository(Principal).find({
      select: { id: true, kind: true },
      where: { id: In(frontier), disabled: false },
    });
    if (enabled.some((p) => p.kind !== 'group')) return true;
    const groups = enabled.map((p) => p.id);
    if (groups.length === 0) return false;
    const members = await manager
      .getRepository(GroupMember)
      .find({ select: { groupId: true, memberId: true }, where: { groupId: In(groups) } });
    frontier = [...new Set(members.map((m) => m.memberId))].filter((id) => !seen.has(id));
    for (const id of frontier) seen.add(id);
  }
  return false;
}

/**
 * Runs a change that could take away the last way to administer rcflow and refuses it (409,
 * rolling the transaction back) when someone could administer everything before and nobody
 * can after. The unrestricted full_administrator assignments are locked first, so concurrent
 * guarded changes run one after the other and cannot each remove "the other" administrator.
 */
export async function guardAdministration<T>(manager: EntityManager, change: () => Promise<T>): Promise<T> {
  await manager.getRepository(RoleAssignment).find({
    select: { id: true },
    where: { role: 'full_administrator', collectionIds: IsNull() },
    order: { id: 'ASC' },
    lock: { mode: 'pessimistic_write' },
  });
  const before = await someoneAdministersEverything(manager);
  const result = await change();
  if (before && !(await someoneAdministersEverything(manager))) {
    throw new Conflict(
      'refused: afterwards no enabled user or service would hold full_administrator over all collections, so nobody could administer rcflow',
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Writes

/** Grants `role` to a principal over `collectionIds` (null = every collection); each collection must exist. */
export async function assignRole(ctx: AdminContext, input: CreateRoleAssignmentInput): Promise<RoleAssignmentView> {
  const a = parseOrThrow(createRoleAssignmentSchema, input);
  const principal = await ctx.manager
    .getRepository(Principal)
    .findOne({ where: { id: a.principalId }, lock: { mode: 'pessimistic_read' } });
  if (!principal) throw new UnprocessableRequest(`principalId ${a.principalId} is not a known principal`);
  const collectionIds = a.collectionIds === null ? null : a.collectionIds.map((c) => c.toLowerCase()).sort();
  if (collectionIds) {
    // FOR SHARE: a concurrent deleteCollection waits for this transaction and then sees the reference.
    const found = await ctx.manager.getRepository(Collection).find({
      select: { id: true },
      where: { id: In(collectionIds) },
      lock: { mode: 'pessimistic_read' },
    });
    const known = new Set(found.map((c) => c.id));
    const missing = collectionIds.filter((c) => !known.has(c));
    if (missing.length > 0) {
      throw new UnprocessableRequest(`collectionIds name collections that do not exist: ${missing.join(', ')}`, { missing });
    }
  }
  const duplicate = await ctx.manager
    .getRepository(RoleAssignment)
    .createQueryBuilder('r')
    .where('r.principalId = :principalId AND r.role = :role', { principalId: a.principalId, role: a.role })
    .andWhere('r.collectionIds IS NOT DISTINCT FROM CAST(:collectionIds AS uuid[])', { collectionIds })
    .getOne();
  if (duplicate) {
    throw new Conflict(`${principal.name} already holds ${a.role} over this scope (role assignment ${duplicate.id})`, {
      roleAssignmentId: duplicate.id,
    });
  }
  const id = randomUUID();
  await ctx.manager.getRepository(RoleAssignment).insert({ id, principalId: a.principalId, role: a.role, collectionIds });
  await recordAudit(ctx, {
    stream: `role_assignment:${id}`,
    action: 'role_assignment.created',
    data: { principalId: a.principalId, principalName: principal.name, role: a.role, collectionIds },
  });
  return (await findRoleAssignment(ctx.manager, id))!;
}

/**
 * Removes a role assignment. The last full_administrator assignment over every collection cannot
 * be removed, nor one whose removal leaves no enabled user or service able to administer everything.
 */
export async function deleteRoleAssignment(ctx: AdminContext, id: string): Promise<RoleAssignmentView> {
  const repo = ctx.manager.getRepository(RoleAssignment);
  return guardAdministration(ctx.manager, async () => {
    const assignment = await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
    if (!assignment) throw new NotFound('role assignment', id);
    const current = (await assignmentViews(ctx.manager, [assignment]))[0]!;
    if (current.role === 'full_administrator' && current.collectionIds === null) {
      const others = await repo
        .createQueryBuilder('r')
        .where({ role: 'full_administrator', collectionIds: IsNull() })
        .andWhere('r.id <> :id', { id })
        .getCount();
      if (others === 0) {
        throw new Conflict('refused: this is the last full_administrator assignment over all collections; nobody could administer rcflow');
      }
    }
    await repo.delete(id);
    await recordAudit(ctx, {
      stream: `role_assignment:${id}`,
      action: 'role_assignment.deleted',
      data: {
        principalId: current.principalId,
        principalName: current.principalName,
        role: current.role,
        collectionIds: current.collectionIds,
      },
    });
    return current;
  });
}

/** Role assignments: global objects any admin.read holder sees; changes need admin.write over all collections. */
@Injectable()
export class RoleAssignmentsService {
  constructor(
    private readonly admin: AdminConnection,
    private readonly revocation: AccessRevocation,
  ) {}

  assign(caller: PrincipalFacts, input: CreateRoleAssignmentInput): Promise<RoleAssignmentView> {
    return this.admin.write(caller, (ctx) => assignRole(ctx, input));
  }

  /** Once the grant is gone, its holder's (or its members') sessions on devices now out of reach end. */
  async remove(caller: PrincipalFacts, id: string): Promise<RoleAssignmentView> {
    const removed = await this.admin.write(caller, (ctx) => deleteRoleAssignment(ctx, id));
    await this.revocation.endOutOfReach(removed.principalId, caller);
    return removed;
  }

  async get(id: string): Promise<RoleAssignmentView> {
    const r = await findRoleAssignment(this.admin.manager, id);
    if (!r) throw new NotFound('role assignment', id);
    return r;
  }

  list(f: PageRequest & { principalId?: string }): Promise<Page<RoleAssignmentView>> {
    return listRoleAssignments(this.admin.manager, f);
  }
}
