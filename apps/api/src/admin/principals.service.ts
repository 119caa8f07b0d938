import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager, In } from 'typeorm';
import { GroupMember, Principal } from '@rcflow/database';
import { Conflict, NotFound, PrincipalFacts, UnprocessableRequest } from '@rcflow/domain';
import { parseOrThrow } from '../common/validation';
import { AccessRevocation } from './access-revocation.service';
import { AdminConnection, AdminContext, MembershipResult, changesOf, conflictOnDuplicate, pickChanged, recordAudit } from './admin-context';
import { Page, PageRequest, keysetPage, prefixPattern } from './admin-page';
import { CreatePrincipalInput, UpdatePrincipalInput, createPrincipalSchema, updatePrincipalSchema } from './admin.schemas';
import { guardAdministration } from './role-assignments.service';

type PrincipalKind = Principal['kind'];

export interface PrincipalRef {
  id: string;
  name: string;
  kind: PrincipalKind;
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

export interface GroupMembership extends MembershipResult {
  groupId: string;
  memberId: string;
}

export interface PrincipalFilter extends PageRequest {
  kind?: PrincipalKind;
  name?: string;
}

const principalView = (p: Principal): PrincipalView => ({
  id: p.id,
  name: p.name,
  kind: p.kind,
  displayName: p.displayName,
  disabled: p.disabled,
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});

export async function findPrincipal(manager: EntityManager, id: string): Promise<PrincipalView | null> {
  const p = await manager.getRepository(Principal).findOneBy({ id });
  return p ? principalView(p) : null;
}

/** The principals `ids` as references, by name without regard to case (then id). */
async function refsByName(manager: EntityManager, ids: string[]): Promise<PrincipalRef[]> {
  if (ids.length === 0) return [];
  const principals = await manager
    .getRepository(Principal)
    .createQueryBuilder('p')
    .where({ id: In(ids) })
    .orderBy('lower(p.name)')
    .addOrderBy('p.id')
    .getMany();
  return principals.map((p) => ({ id: p.id, name: p.name, kind: p.kind }));
}

/**
 * Every principal reachable from `from` through group memberships, one level per query:
 * 'members' walks from groups to their members, 'groups' from members to the groups holding them.
 * `from` itself is included only when a cycle leads back to it.
 */
async function reachable(manager: EntityManager, from: string, direction: 'members' | 'groups'): Promise<Set<string>> {
  const [near, far] = direction === 'members' ? (['groupId', 'memberId'] as const) : (['memberId', 'groupId'] as const);
  const found = new Set<string>();
  let frontier = [from];
  while (frontier.length > 0) {
    const edges = await manager.getRepository(GroupMember).find({ where: { [near]: In(frontier) } });
    frontier = [...new Set(edges.map((e) => e[far]))].filter((id) => !found.has(id));
    for (const id of frontier) found.add(id);
  }
  return found;
}

export async function findPrincipalDetail(manager: EntityManager, id: string): Promise<PrincipalDetailView | null> {
  const p = await findPrincipal(manager, id);
  if (!p) return null;
  const direct = await manager.getRepository(GroupMember).find({ select: { groupId: true, memberId: true }, where: { memberId: id } });
  const all = [...(await reachable(manager, id, 'groups'))].filter((g) => g !== id);
  const detail: PrincipalDetailView = {
    ...p,
    groups: await refsByName(
      manager,
      direct.map((m) => m.groupId),
    ),
    allGroups: await refsByName(manager, all),
  };
  if (p.kind === 'group') {
    const members = await manager.getRepository(GroupMember).find({ select: { groupId: true, memberId: true }, where: { groupId: id } });
    detail.members = await refsByName(
      manager,
      members.map((m) => m.memberId),
    );
  }
  return detail;
}

export function listPrincipals(manager: EntityManager, f: PrincipalFilter): Promise<Page<PrincipalView>> {
  const qb = manager.getRepository(Principal).createQueryBuilder('p');
  if (f.kind) qb.andWhere('p.kind = :kind', { kind: f.kind });
  if (f.name) qb.andWhere(`p.name ILIKE :name ESCAPE '\\'`, { name: prefixPattern(f.name) });
  return keysetPage(qb, 'p', f, (principals) => principals.map(principalView));
}

export async function createPrincipal(ctx: AdminContext, input: CreatePrincipalInput): Promise<PrincipalView> {
  const p = parseOrThrow(createPrincipalSchema, input);
  const id = randomUUID();
  // uq_principals_name is on lower(name): names are unique without regard to case.
  await conflictOnDuplicate(`a principal named ${p.name} already exists (names are compared without regard to case)`, () =>
    ctx.manager.getRepository(Principal).insert({ id, name: p.name, kind: p.kind, displayName: p.displayName ?? null }),
  );
  await recordAudit(ctx, {
    stream: `principal:${id}`,
    action: 'principal.created',
    data: { name: p.name, kind: p.kind, displayName: p.displayName ?? null },
  });
  return (await findPrincipal(ctx.manager, id))!;
}

/** Changes displayName or disabled. Disabling the last principal that can administer everything is refused. */
export async function updatePrincipal(ctx: AdminContext, id: string, input: UpdatePrincipalInput): Promise<PrincipalView> {
  const patch = parseOrThrow(updatePrincipalSchema, input);
  const repo = ctx.manager.getRepository(Principal);
  return guardAdministration(ctx.manager, async () => {
    const principal = await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
    if (!principal) throw new NotFound('principal', id);
    const current = principalView(principal);
    const changes = changesOf(current, patch);
    if (Object.keys(changes).length === 0) return current;
    await repo.update(id, pickChanged<Partial<Principal>>(patch, changes));
    await recordAudit(ctx, {
      stream: `principal:${id}`,
      action: changes.disabled ? (patch.disabled ? 'principal.disabled' : 'principal.enabled') : 'principal.updated',
      data: { name: current.name, changes },
    });
    return (await findPrincipal(ctx.manager, id))!;
  });
}

/** Serializes group-membership changes so two concurrent additions cannot form a cycle together. */
const GROUP_MEMBERSHIP_LOCK = 0x7263666c6f77; // "rcflow"

async function lockGroupMembership(manager: EntityManager): Promise<void> {
  // An advisory lock has no TypeORM API; it reads and writes no rows.
  await manager.query('SELECT pg_advisory_xact_lock($1)', [GROUP_MEMBERSHIP_LOCK]);
}

/** Locks both principals FOR SHARE; the first must be a group. */
async function lockGroupAndMember(manager: EntityManager, groupId: string, memberId: string) {
  const repo = manager.getRepository(Principal);
  const group = await repo.findOne({ where: { id: groupId }, lock: { mode: 'pessimistic_read' } });
  if (!group) throw new NotFound('group', groupId);
  if (group.kind !== 'group') {
    throw new UnprocessableRequest(`principal ${group.name} is a ${group.kind}, not a group; only groups have members`);
  }
  const member = await repo.findOne({ where: { id: memberId }, lock: { mode: 'pessimistic_read' } });
  if (!member) throw new NotFound('principal', memberId);
  return { group, member };
}

/** Adds a user, service or group to a group. A group cannot contain itself, directly or through nesting. */
export async function addGroupMember(ctx: AdminContext, groupId: string, memberId: string): Promise<GroupMembership> {
  await lockGroupMembership(ctx.manager);
  const { group, member } = await lockGroupAndMember(ctx.manager, groupId, memberId);
  if (groupId === memberId) throw new UnprocessableRequest(`group ${group.name} cannot be a member of itself`);
  // The group would end up inside itself when it already is (transitively) a member of the new member.
  if (member.kind === 'group' && (await reachable(ctx.manager, memberId, 'members')).has(groupId)) {
    throw new Conflict(`group ${member.name} already contains ${group.name}; adding it to ${group.name} would make a cycle`);
  }
  const inserted = await ctx.manager
    .createQueryBuilder()
    .insert()
    .into(GroupMember)
    .values({ groupId, memberId })
    .orIgnore()
    .updateEntity(false)
    .returning(['memberId'])
    .execute();
  const changed = Array.isArray(inserted.raw) && inserted.raw.length > 0;
  if (changed) {
    await recordAudit(ctx, {
      stream: `principal:${groupId}`,
      action: 'principal.member_added',
      data: { groupName: group.name, memberId, memberName: member.name, memberKind: member.kind },
    });
  }
  return { groupId, memberId, changed };
}

/** Removes a member from a group; refused when that would leave nobody able to administer everything. */
export async function removeGroupMember(ctx: AdminContext, groupId: string, memberId: string): Promise<GroupMembership> {
  await lockGroupMembership(ctx.manager);
  return guardAdministration(ctx.manager, async () => {
    const { group, member } = await lockGroupAndMember(ctx.manager, groupId, memberId);
    const deleted = await ctx.manager.getRepository(GroupMember).delete({ groupId, memberId });
    const changed = (deleted.affected ?? 0) > 0;
    if (changed) {
      await recordAudit(ctx, {
        stream: `principal:${groupId}`,
        action: 'principal.member_removed',
        data: { groupName: group.name, memberId, memberName: member.name, memberKind: member.kind },
      });
    }
    return { groupId, memberId, changed };
  });
}

/** Principals and groups: global objects any admin.read holder sees; changes need admin.write over all collections. */
@Injectable()
export class PrincipalsService {
  constructor(
    private readonly admin: AdminConnection,
    private readonly revocation: AccessRevocation,
  ) {}

  create(caller: PrincipalFacts, input: CreatePrincipalInput): Promise<PrincipalView> {
    return this.admin.write(caller, (ctx) => createPrincipal(ctx, input));
  }

  /** A principal disabled (or a group: its members) loses its sessions on devices now out of reach. */
  async update(caller: PrincipalFacts, id: string, input: UpdatePrincipalInput): Promise<PrincipalView> {
    const view = await this.admin.write(caller, (ctx) => updatePrincipal(ctx, id, input));
    if (view.disabled) await this.revocation.endOutOfReach(id, caller);
    return view;
  }

  addMember(caller: PrincipalFacts, groupId: string, memberId: string): Promise<GroupMembership> {
    return this.admin.write(caller, (ctx) => addGroupMember(ctx, groupId, memberId));
  }

  /** The member (or, for a group, its members) loses its sessions on devices the group gave it. */
  async removeMember(caller: PrincipalFacts, groupId: string, memberId: string): Promise<GroupMembership> {
    const result = await this.admin.write(caller, (ctx) => removeGroupMember(ctx, groupId, memberId));
    if (result.changed) await this.revocation.endOutOfReach(memberId, caller);
    return result;
  }

  async get(id: string): Promise<PrincipalDetailView> {
    const p = await findPrincipalDetail(this.admin.manager, id);
    if (!p) throw new NotFound('principal', id);
    return p;
  }

  list(f: PrincipalFilter): Promise<Page<PrincipalView>> {
    return listPrincipals(this.admin.manager, f);
  }
}
