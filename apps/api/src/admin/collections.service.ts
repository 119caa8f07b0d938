import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ArrayContains, EntityManager, In } from 'typeorm';
import { Collection, CollectionMember, Device, RoleAssignment, SettingsDeployment } from '@rcflow/database';
import { Conflict, NotFound, PrincipalFacts } from '@rcflow/domain';
import { parseOrThrow } from '../common/validation';
import { AccessRevocation } from './access-revocation.service';
import { AdminConnection, AdminContext, MembershipResult, changesOf, conflictOnDuplicate, pickChanged, recordAudit } from './admin-context';
import { Page, PageRequest, keysetPage } from './admin-page';
import { CreateCollectionInput, UpdateCollectionInput, createCollectionSchema, updateCollectionSchema } from './admin.schemas';
import { DeviceView, listDevices } from './devices.service';

export interface CollectionView {
  id: string;
  name: string;
  description: string | null;
  memberCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface CollectionMembership extends MembershipResult {
  collectionId: string;
  deviceId: string;
}

/** The views of `collections`, their member counts loaded in one query. */
async function collectionViews(manager: EntityManager, collections: Collection[]): Promise<CollectionView[]> {
  if (collections.length === 0) return [];
  const counts = await manager
    .getRepository(CollectionMember)
    .createQueryBuilder('m')
    .select('m.collectionId', 'collectionId')
    .addSelect('count(*)::int', 'members')
    .where({ collectionId: In(collections.map((c) => c.id)) })
    .groupBy('m.collectionId')
    .getRawMany<{ collectionId: string; members: number | string }>();
  return collections.map((c) => ({
    id: c.id,
    name: c.name,
    description: c.description,
    memberCount: Number(counts.find((n) => n.collectionId === c.id)?.members ?? 0),
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  }));
}

export async function findCollection(manager: EntityManager, id: string, scope: string[] | null = null): Promise<CollectionView | null> {
  if (scope !== null && !scope.includes(id)) return null;
  const collection = await manager.getRepository(Collection).findOneBy({ id });
  return collection ? (await collectionViews(manager, [collection]))[0]! : null;
}

export function listCollections(manager: EntityManager, f: PageRequest & { scope: string[] | null }): Promise<Page<CollectionView>> {
  const qb = manager.getRepository(Collection).createQueryBuilder('c');
  if (f.scope !== null) qb.andWhere('c.id = ANY(:scope::uuid[])', { scope: f.scope });
  return keysetPage(qb, 'c', f, (collections) => collectionViews(manager, collections));
}

async function assertNameFree(manager: EntityManager, name: string, exceptId: string | null): Promise<void> {
  const qb = manager.getRepository(Collection).createQueryBuilder('c').where('lower(c.name) = lower(:name)', { name });
  if (exceptId) qb.andWhere('c.id <> :exceptId', { exceptId });
  const other = await qb.getOne();
  if (other) throw new Conflict(`a collection named ${name} already exists (${other.id})`);
}

export async function createCollection(ctx: AdminContext, input: CreateCollectionInput): Promise<CollectionView> {
  const c = parseOrThrow(createCollectionSchema, input);
  await assertNameFree(ctx.manager, c.name, null);
  const id = randomUUID();
  await conflictOnDuplicate(`a collection named ${c.name} already exists`, () =>
    ctx.manager.getRepository(Collection).insert({ id, name: c.name, description: c.description ?? null }),
  );
  await recordAudit(ctx, {
    stream: `collection:${id}`,
    action: 'collection.created',
    data: { name: c.name, description: c.description ?? null },
  });
  return (await findCollection(ctx.manager, id))!;
}

/** Locks the collection against concurrent changes (FOR UPDATE) and returns its view; 404 when unknown. */
async function lockForUpdate(manager: EntityManager, id: string): Promise<CollectionView> {
  const collection = await manager.getRepository(Collection).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  if (!collection) throw new NotFound('collection', id);
  return (await collectionViews(manager, [collection]))[0]!;
}

export async function updateCollection(ctx: AdminContext, id: string, input: UpdateCollectionInput): Promise<CollectionView> {
  const patch = parseOrThrow(updateCollectionSchema, input);
  const current = await lockForUpdate(ctx.manager, id);
  const changes = changesOf(current, patch);
  if (Object.keys(changes).length === 0) return current;
  if (changes.name) await assertNameFree(ctx.manager, patch.name!, id);
  await conflictOnDuplicate(`a collection named ${patch.name} already exists`, () =>
    ctx.manager.getRepository(Collection).update(id, pickChanged<Partial<Collection>>(patch, changes)),
  );
  await recordAudit(ctx, { stream: `collection:${id}`, action: 'collection.updated', data: { changes } });
  return (await findCollection(ctx.manager, id))!;
}

/** Deletes an empty collection nothing refers to (no members, deployments or role assignments). */
export async function deleteCollection(ctx: AdminContext, id: string): Promise<CollectionView> {
  // FOR UPDATE waits for, and then blocks, writers that reference the collection (they lock it FOR SHARE).
  const current = await lockForUpdate(ctx.manager, id);
  const members = await ctx.manager.getRepository(CollectionMember).countBy({ collectionId: id });
  const deployments = await ctx.manager.getRepository(SettingsDeployment).countBy({ collectionId: id });
  const roleAssignments = await ctx.manager.getRepository(RoleAssignment).countBy({ collectionIds: ArrayContains([id]) });
  if (members + deployments + roleAssignments > 0) {
    throw new Conflict(
      `collection ${current.name} is still in use (${members} members, ${deployments} client settings deployments, ` +
        `${roleAssignments} role assignments); remove them first`,
      { members, deployments, roleAssignments },
    );
  }
  await ctx.manager.getRepository(Collection).delete(id);
  await recordAudit(ctx, {
    stream: `collection:${id}`,
    action: 'collection.deleted',
    data: { name: current.name, description: current.description },
  });
  return current;
}

/** Locks both rows FOR SHARE: neither can be deleted until the membership change commits. */
async function lockCollectionAndDevice(manager: EntityManager, collectionId: string, deviceId: string) {
  const collection = await manager.getRepository(Collection).findOne({ where: { id: collectionId }, lock: { mode: 'pessimistic_read' } });
  if (!collection) throw new NotFound('collection', collectionId);
  const device = await manager.getRepository(Device).findOne({ where: { id: deviceId }, lock: { mode: 'pessimistic_read' } });
  if (!device) throw new NotFound('device', deviceId);
  return { collection, device };
}

export async function addCollectionMember(ctx: AdminContext, collectionId: string, deviceId: string): Promise<CollectionMembership> {
  const { collection, device } = await lockCollectionAndDevice(ctx.manager, collectionId, deviceId);
  const inserted = await ctx.manager
    .createQueryBuilder()
    .insert()
    .into(CollectionMember)
    .values({ collectionId, deviceId })
    .orIgnore()
    .updateEntity(false)
    .returning(['deviceId'])
    .execute();
  const changed = Array.isArray(inserted.raw) && inserted.raw.length > 0;
  if (changed) {
    await recordAudit(ctx, {
      stream: `collection:${collectionId}`,
      action: 'collection.member_added',
      deviceId,
      data: { collectionName: collection.name, deviceId, hostname: device.hostname },
    });
  }
  return { collectionId, deviceId, changed };
}

export async function removeCollectionMember(ctx: AdminContext, collectionId: string, deviceId: string): Promise<CollectionMembership> {
  const { collection, device } = await lockCollectionAndDevice(ctx.manager, collectionId, deviceId);
  const deleted = await ctx.manager.getRepository(CollectionMember).delete({ collectionId, deviceId });
  const changed = (deleted.affected ?? 0) > 0;
  if (changed) {
    await recordAudit(ctx, {
      stream: `collection:${collectionId}`,
      action: 'collection.member_removed',
      deviceId,
      data: { collectionName: collection.name, deviceId, hostname: device.hostname },
    });
  }
  return { collectionId, deviceId, changed };
}

/** Collections and their members: changes need admin.write over all collections; reads see the caller's admin.read scope. */
@Injectable()
export class CollectionsService {
  constructor(
    private readonly admin: AdminConnection,
    private readonly revocation: AccessRevocation,
  ) {}

  create(caller: PrincipalFacts, input: CreateCollectionInput): Promise<CollectionView> {
    return this.admin.write(caller, (ctx) => createCollection(ctx, input));
  }

  update(caller: PrincipalFacts, id: string, input: UpdateCollectionInput): Promise<CollectionView> {
    return this.admin.write(caller, (ctx) => updateCollection(ctx, id, input));
  }

  remove(caller: PrincipalFacts, id: string): Promise<CollectionView> {
    return this.admin.write(caller, (ctx) => deleteCollection(ctx, id));
  }

  addMember(caller: PrincipalFacts, collectionId: string, deviceId: string): Promise<CollectionMembership> {
    return this.admin.write(caller, (ctx) => addCollectionMember(ctx, collectionId, deviceId));
  }

  /** The device's sessions whose viewer reached it through this collection only end. */
  async removeMember(caller: PrincipalFacts, collectionId: string, deviceId: string): Promise<CollectionMembership> {
    const result = await this.admin.write(caller, (ctx) => removeCollectionMember(ctx, collectionId, deviceId));
    if (result.changed) await this.revocation.endOutOfReachOnDevice(deviceId, caller);
    return result;
  }

  /** A collection in the caller's scope; one outside it answers 404 like an unknown one. */
  async get(caller: PrincipalFacts, id: string): Promise<CollectionView> {
    const c = await findCollection(this.admin.manager, id, this.admin.readScope(caller));
    if (!c) throw new NotFound('collection', id);
    return c;
  }

  list(caller: PrincipalFacts, f: PageRequest): Promise<Page<CollectionView>> {
    return listCollections(this.admin.manager, { ...f, scope: this.admin.readScope(caller) });
  }

  async members(caller: PrincipalFacts, id: string, f: PageRequest): Promise<Page<DeviceView>> {
    await this.get(caller, id);
    // Every member of a collection in scope is in scope.
    return listDevices(this.admin.manager, { ...f, collectionId: id, scope: null });
  }
}
