import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager, In, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { CollectionMember, Device, deviceInScopeSql, loadEffectiveSettings } from '@rcflow/database';
import { Conflict, NotFound, OsFamily, PrincipalFacts } from '@rcflow/domain';
import { parseOrThrow } from '../common/validation';
import {
  AdminConnection,
  AdminContext,
  changesOf,
  conflictOnDuplicate,
  dateOrNull,
  isoOrNull,
  pickChanged,
  recordAudit,
} from './admin-context';
import { Page, PageRequest, keysetPage, prefixPattern } from './admin-page';
import { CreateDeviceInput, UpdateDeviceInput, createDeviceSchema, updateDeviceSchema } from './admin.schemas';

/** A device as the API shows it, with the collections it belongs to. */
export interface DeviceView {
  id: string;
  hostname: string;
  fqdn: string | null;
  domainJoined: boolean;
  domain: string | null;
  osFamily: OsFamily;
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

export interface DeviceFilter extends PageRequest {
  hostname?: string;
  collectionId?: string;
  /** The collections whose members may be listed (null = every device). */
  scope: string[] | null;
}

/** Restricts `qb` to devices in `scope`, through the one rendering of the scope rule. */
export function whereDeviceInScope<E extends ObjectLiteral>(qb: SelectQueryBuilder<E>, deviceColumn: string, scope: string[] | null) {
  const params: ObjectLiteral = {};
  const condition = deviceInScopeSql(deviceColumn, scope, (value) => {
    params.scopeCollectionIds = value;
    return ':scopeCollectionIds';
  });
  return qb.andWhere(condition, params);
}

/** The views of `devices`, with their collections loaded in one query. */
export async function deviceViews(manager: EntityManager, devices: Device[]): Promise<DeviceView[]> {
  if (devices.length === 0) return [];
  const memberships = await manager.getRepository(CollectionMember).find({
    where: { deviceId: In(devices.map((d) => d.id)) },
    order: { collectionId: 'ASC' },
  });
  return devices.map((d) => ({
    id: d.id,
    hostname: d.hostname,
    fqdn: d.fqdn,
    domainJoined: d.domainJoined,
    domain: d.domain,
    osFamily: d.osFamily,
    osBuild: d.osBuild,
    agentVersion: d.agentVersion,
    lastHeartbeatAt: isoOrNull(d.lastHeartbeatAt),
    loggedOnUser: d.loggedOnUser,
    locked: d.locked,
    localAdministrators: d.localAdministrators,
    enrolled: d.enrolled,
    retired: d.retired,
    appliedSettingsHash: d.appliedSettingsHash,
    collectionIds: memberships.filter((m) => m.deviceId === d.id).map((m) => m.collectionId),
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  }));
}

export async function findDevice(manager: EntityManager, id: string, scope: string[] | null = null): Promise<DeviceView | null> {
  const qb = manager.getRepository(Device).createQueryBuilder('d').where('d.id = :id', { id });
  const device = await whereDeviceInScope(qb, 'd.id', scope).getOne();
  return device ? (await deviceViews(manager, [device]))[0]! : null;
}

export function listDevices(manager: EntityManager, f: DeviceFilter): Promise<Page<DeviceView>> {
  const qb = whereDeviceInScope(manager.getRepository(Device).createQueryBuilder('d'), 'd.id', f.scope);
  if (f.hostname) qb.andWhere(`d.hostname ILIKE :hostname ESCAPE '\\'`, { hostname: prefixPattern(f.hostname) });
  if (f.collectionId) {
    qb.innerJoin(CollectionMember, 'fm', 'fm.deviceId = d.id AND fm.collectionId = :collectionId', { collectionId: f.collectionId });
  }
  return keysetPage(qb, 'd', f, (devices) => deviceViews(manager, devices));
}

/** Hostnames are unique without regard to case (Windows and DNS names are case-insensitive). */
async function assertHostnameFree(manager: EntityManager, hostname: string, exceptId: string | null): Promise<void> {
  const qb = manager.getRepository(Device).createQueryBuilder('d').where('lower(d.hostname) = lower(:hostname)', { hostname });
  if (exceptId) qb.andWhere('d.id <> :exceptId', { exceptId });
  const other = await qb.getOne();
  if (other) throw new Conflict(`a device with hostname ${hostname} already exists (${other.id})`);
}

/**
 * Registers a device. Defaults: osFamily 'windows', domainJoined false, osBuild '',
 * localAdministrators [], enrolled true, locked false; everything else null.
 */
export async function createDevice(ctx: AdminContext, input: CreateDeviceInput): Promise<DeviceView> {
  const d = parseOrThrow(createDeviceSchema, input);
  await assertHostnameFree(ctx.manager, d.hostname, null);
  const id = randomUUID();
  await conflictOnDuplicate(`a device with hostname ${d.hostname} already exists`, () =>
    ctx.manager.getRepository(Device).insert({
      id,
      hostname: d.hostname,
      fqdn: d.fqdn ?? null,
      domainJoined: d.domainJoined ?? false,
      domain: d.domain ?? null,
      osFamily: d.osFamily ?? 'windows',
      osBuild: d.osBuild ?? '',
      agentVersion: d.agentVersion ?? null,
      localAdministrators: d.localAdministrators,
      enrolled: d.enrolled ?? true,
      lastHeartbeatAt: dateOrNull(d.lastHeartbeatAt) ?? null,
      loggedOnUser: d.loggedOnUser ?? null,
      locked: d.locked ?? false,
    }),
  );
  const device = (await findDevice(ctx.manager, id))!;
  const { id: _id, createdAt: _c, updatedAt: _u, collectionIds: _m, appliedSettingsHash: _h, ...fields } = device;
  await recordAudit(ctx, { stream: `device:${id}`, action: 'device.created', deviceId: id, data: fields });
  return device;
}

/** Changes the given fields (null clears a nullable one); `retired` retires or reinstates the device. */
export async function updateDevice(ctx: AdminContext, id: string, input: UpdateDeviceInput): Promise<DeviceView> {
  const patch = parseOrThrow(updateDeviceSchema, input);
  const repo = ctx.manager.getRepository(Device);
  const locked = await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  if (!locked) throw new NotFound('device', id);
  const current = (await deviceViews(ctx.manager, [locked]))[0]!;
  const lastHeartbeatAt = dateOrNull(patch.lastHeartbeatAt);
  const changes = changesOf(current, { ...patch, lastHeartbeatAt: lastHeartbeatAt?.toISOString() });
  if (Object.keys(changes).length === 0) return current;
  if (changes.hostname) await assertHostnameFree(ctx.manager, patch.hostname!, id);
  await conflictOnDuplicate(`a device with hostname ${patch.hostname} already exists`, () =>
    repo.update(id, pickChanged<Partial<Device>>({ ...patch, lastHeartbeatAt }, changes)),
  );
  await recordAudit(ctx, { stream: `device:${id}`, action: 'device.updated', deviceId: id, data: { changes } });
  return (await findDevice(ctx.manager, id))!;
}

/** Devices: registration and changes (admin.write over all collections), reads within the caller's admin.read scope. */
@Injectable()
export class DevicesService {
  constructor(private readonly admin: AdminConnection) {}

  create(caller: PrincipalFacts, input: CreateDeviceInput): Promise<DeviceView> {
    return this.admin.write(caller, (ctx) => createDevice(ctx, input));
  }

  update(caller: PrincipalFacts, id: string, input: UpdateDeviceInput): Promise<DeviceView> {
    return this.admin.write(caller, (ctx) => updateDevice(ctx, id, input));
  }

  /** A device in the caller's scope; one outside it answers 404 like an unknown one. */
  async get(caller: PrincipalFacts, id: string): Promise<DeviceView> {
    const d = await findDevice(this.admin.manager, id, this.admin.readScope(caller));
    if (!d) throw new NotFound('device', id);
    return d;
  }

  list(caller: PrincipalFacts, f: Omit<DeviceFilter, 'scope'>): Promise<Page<DeviceView>> {
    return listDevices(this.admin.manager, { ...f, scope: this.admin.readScope(caller) });
  }

  async effectiveSettings(caller: PrincipalFacts, id: string) {
    await this.get(caller, id);
    const s = await loadEffectiveSettings(this.admin.manager, id);
    return { deviceId: id, values: s.values, provenance: s.provenance, versionHash: s.versionHash };
  }
}
