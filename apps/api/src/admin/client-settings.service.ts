import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager, In } from 'typeorm';
import { ClientSettings, Collection, SettingsDeployment } from '@rcflow/database';
import {
  Conflict,
  NotFound,
  PrincipalFacts,
  type RemoteToolsSettings,
  UnprocessableRequest,
  remoteToolsFullSchema,
  remoteToolsPartialSchema,
} from '@rcflow/domain';
import { parseOrThrow } from '../common/validation';
import { AdminConnection, AdminContext, Changes, MembershipResult, changesOf, conflictOnDuplicate, recordAudit } from './admin-context';
import { Page } from './admin-page';
import {
  CreateClientSettingsInput,
  DEFAULT_SETTINGS_ORDER,
  RemoteToolsPatch,
  UpdateClientSettingsInput,
  createClientSettingsSchema,
  updateClientSettingsSchema,
} from './admin.schemas';

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

export interface Deployment extends MembershipResult {
  settingsId: string;
  collectionId: string;
}

/** The views of `sets`, their deployments loaded in one query. */
async function settingsViews(manager: EntityManager, sets: ClientSettings[]): Promise<ClientSettingsView[]> {
  if (sets.length === 0) return [];
  const deployments = await manager.getRepository(SettingsDeployment).find({
    where: { settingsId: In(sets.map((s) => s.id)) },
    order: { collectionId: 'ASC' },
  });
  return sets.map((s) => ({
    id: s.id,
    name: s.name,
    isDefault: s.isDefault,
    order: s.order,
    remoteTools: s.remoteTools,
    collectionIds: deployments.filter((d) => d.settingsId === s.id).map((d) => d.collectionId),
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  }));
}

export async function findClientSettings(manager: EntityManager, id: string): Promise<ClientSettingsView | null> {
  const set = await manager.getRepository(ClientSettings).findOneBy({ id });
  return set ? (await settingsViews(manager, [set]))[0]! : null;
}

/** Every set, in the order the merge applies them: lowest order first, the default (10000) last. */
export async function listClientSettings(manager: EntityManager): Promise<ClientSettingsView[]> {
  const sets = await manager.getRepository(ClientSettings).find({ order: { isDefault: 'ASC', order: 'ASC', id: 'ASC' } });
  return settingsViews(manager, sets);
}

async function assertNameFree(manager: EntityManager, name: string, exceptId: string | null): Promise<void> {
  const qb = manager.getRepository(ClientSettings).createQueryBuilder('s').where('lower(s.name) = lower(:name)', { name });
  if (exceptId) qb.andWhere('s.id <> :exceptId', { exceptId });
  const other = await qb.getOne();
  if (other) throw new Conflict(`client settings named ${name} already exist (${other.id})`);
}

/** Applies a merge patch: a value sets the key, null removes it. */
function applyRemoteToolsPatch(stored: Partial<RemoteToolsSettings>, patch: RemoteToolsPatch): Record<string, unknown> {
  const merged = new Map<string, unknown>(Object.entries(stored));
  const entries: [string, unknown][] = Object.entries(patch);
  for (const [k, v] of entries) {
    if (v === undefined) continue;
    if (v === null) merged.delete(k);
    else merged.set(k, v);
  }
  return Object.fromEntries(merged);
}

function remoteToolsChanges(from: Partial<RemoteToolsSettings>, to: Partial<RemoteToolsSettings>): Changes {
  const before: Record<string, unknown> = from;
  const after: Record<string, unknown> = to;
  const changes: Changes = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[k] ?? null) !== JSON.stringify(after[k] ?? null)) {
      changes[k] = { from: before[k] ?? null, to: after[k] ?? null };
    }
  }
  return changes;
}

/** Creates a custom set (not deployed anywhere yet). `remoteTools` holds only the keys it configures. */
export async function createClientSettings(ctx: AdminContext, input: CreateClientSettingsInput): Promise<ClientSettingsView> {
  const s = parseOrThrow(createClientSettingsSchema, input);
  const remoteTools = s.remoteTools ?? {};
  await assertNameFree(ctx.manager, s.name, null);
  const id = randomUUID();
  await conflictOnDuplicate(`client settings named ${s.name} already exist`, () =>
    ctx.manager.getRepository(ClientSettings).insert({ id, name: s.name, isDefault: false, order: s.order, remoteTools }),
  );
  await recordAudit(ctx, { stream: `settings:${id}`, action: 'settings.created', data: { name: s.name, order: s.order, remoteTools } });
  return (await findClientSettings(ctx.manager, id))!;
}

async function lockForUpdate(manager: EntityManager, id: string): Promise<ClientSettings> {
  const set = await manager.getRepository(ClientSettings).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  if (!set) throw new NotFound('client settings', id);
  return set;
}

/**
 * Renames, reorders or patches a set. For the default set the patched remote-tools values must
 * stay complete (validated with remoteToolsFullSchema) and the order stays 10000.
 */
export async function updateClientSettings(ctx: AdminContext, id: string, input: UpdateClientSettingsInput): Promise<ClientSettingsView> {
  const patch = parseOrThrow(updateClientSettingsSchema, input);
  const set = await lockForUpdate(ctx.manager, id);
  if (set.isDefault && patch.order !== undefined) {
    throw new UnprocessableRequest(`the default client settings always have order ${DEFAULT_SETTINGS_ORDER}; order cannot be set`);
  }
  const changes = changesOf({ name: set.name, order: set.order }, { name: patch.name, order: patch.order });
  const stored = set.remoteTools;
  let remoteTools: Partial<RemoteToolsSettings> = stored;
  let remoteToolsChanged: Changes = {};
  if (patch.remoteTools) {
    const merged = applyRemoteToolsPatch(stored, patch.remoteTools);
    remoteTools = set.isDefault
      ? parseOrThrow(remoteToolsFullSchema, merged, 'remoteTools (the default set must stay complete)')
      : parseOrThrow(remoteToolsPartialSchema, merged, 'remoteTools');
    remoteToolsChanged = remoteToolsChanges(stored, remoteTools);
  }
  if (Object.keys(changes).length === 0 && Object.keys(remoteToolsChanged).length === 0) {
    return (await findClientSettings(ctx.manager, id))!;
  }
  if (changes.name) await assertNameFree(ctx.manager, patch.name!, id);
  await conflictOnDuplicate(`client settings named ${patch.name} already exist`, () =>
    ctx.manager.getRepository(ClientSettings).update(id, { name: patch.name ?? set.name, order: patch.order ?? set.order, remoteTools }),
  );
  await recordAudit(ctx, {
    stream: `settings:${id}`,
    action: 'settings.updated',
    data: { isDefault: set.isDefault, changes, remoteTools: remoteToolsChanged },
  });
  return (await findClientSettings(ctx.manager, id))!;
}

/** Deletes a custom set and its deployments; the default set cannot be deleted. */
export async function deleteClientSettings(ctx: AdminContext, id: string): Promise<ClientSettingsView> {
  const set = await lockForUpdate(ctx.manager, id);
  if (set.isDefault) throw new UnprocessableRequest('the default client settings apply to every device and cannot be deleted');
  const current = (await settingsViews(ctx.manager, [set]))[0]!;
  await ctx.manager.getRepository(SettingsDeployment).delete({ settingsId: id });
  await ctx.manager.getRepository(ClientSettings).delete(id);
  await recordAudit(ctx, {
    stream: `settings:${id}`,
    action: 'settings.deleted',
    data: { name: current.name, order: current.order, remoteTools: current.remoteTools, undeployedFrom: current.collectionIds },
  });
  return current;
}

/** Locks both rows FOR SHARE; only custom sets are deployed. */
async function lockSettingsAndCollection(manager: EntityManager, settingsId: string, collectionId: string) {
  const settings = await manager.getRepository(ClientSettings).findOne({ where: { id: settingsId }, lock: { mode: 'pessimistic_read' } });
  if (!settings) throw new NotFound('client settings', settingsId);
  if (settings.isDefault) {
    throw new UnprocessableRequest('the default client settings apply to every device; only custom settings are deployed to collections');
  }
  const collection = await manager.getRepository(Collection).findOne({ where: { id: collectionId }, lock: { mode: 'pessimistic_read' } });
  if (!collection) throw new NotFound('collection', collectionId);
  return { settings, collection };
}

export async function deployClientSettings(ctx: AdminContext, settingsId: string, collectionId: string): Promise<Deployment> {
  const { settings, collection } = await lockSettingsAndCollection(ctx.manager, settingsId, collectionId);
  const inserted = await ctx.manager
    .createQueryBuilder()
    .insert()
    .into(SettingsDeployment)
    .values({ settingsId, collectionId })
    .orIgnore()
    .updateEntity(false)
    .returning(['settingsId'])
    .execute();
  const changed = Array.isArray(inserted.raw) && inserted.raw.length > 0;
  if (changed) {
    await recordAudit(ctx, {
      stream: `settings:${settingsId}`,
      action: 'settings.deployed',
      data: { settingsName: settings.name, collectionId, collectionName: collection.name },
    });
  }
  return { settingsId, collectionId, changed };
}

export async function undeployClientSettings(ctx: AdminContext, settingsId: string, collectionId: string): Promise<Deployment> {
  const { settings, collection } = await lockSettingsAndCollection(ctx.manager, settingsId, collectionId);
  const deleted = await ctx.manager.getRepository(SettingsDeployment).delete({ settingsId, collectionId });
  const changed = (deleted.affected ?? 0) > 0;
  if (changed) {
    await recordAudit(ctx, {
      stream: `settings:${settingsId}`,
      action: 'settings.undeployed',
      data: { settingsName: settings.name, collectionId, collectionName: collection.name },
    });
  }
  return { settingsId, collectionId, changed };
}

/** Client settings and their deployments: global objects any admin.read holder sees; changes need admin.write over all collections. */
@Injectable()
export class ClientSettingsService {
  constructor(private readonly admin: AdminConnection) {}

  create(caller: PrincipalFacts, input: CreateClientSettingsInput): Promise<ClientSettingsView> {
    return this.admin.write(caller, (ctx) => createClientSettings(ctx, input));
  }

  update(caller: PrincipalFacts, id: string, input: UpdateClientSettingsInput): Promise<ClientSettingsView> {
    return this.admin.write(caller, (ctx) => updateClientSettings(ctx, id, input));
  }

  remove(caller: PrincipalFacts, id: string): Promise<ClientSettingsView> {
    return this.admin.write(caller, (ctx) => deleteClientSettings(ctx, id));
  }

  deploy(caller: PrincipalFacts, settingsId: string, collectionId: string): Promise<Deployment> {
    return this.admin.write(caller, (ctx) => deployClientSettings(ctx, settingsId, collectionId));
  }

  undeploy(caller: PrincipalFacts, settingsId: string, collectionId: string): Promise<Deployment> {
    return this.admin.write(caller, (ctx) => undeployClientSettings(ctx, settingsId, collectionId));
  }

  async get(id: string): Promise<ClientSettingsView> {
    const s = await findClientSettings(this.admin.manager, id);
    if (!s) throw new NotFound('client settings', id);
    return s;
  }

  async list(): Promise<Page<ClientSettingsView>> {
    return { items: await listClientSettings(this.admin.manager), nextCursor: null };
  }
}
