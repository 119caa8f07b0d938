import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager, IsNull, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { formatCredential } from '@rcflow/agent-protocol';
import { Collection, Device, DeviceCredential, EnrolmentToken, deviceInScopeSql } from '@rcflow/database';
import { Forbidden, NotFound, PrincipalFacts, UnprocessableRequest, scopeOf } from '@rcflow/domain';
import { AgentSockets } from '../agents/agent-sockets';
import { newKeySecret } from '../auth/api-keys';
import { parseOrThrow } from '../common/validation';
import { AdminConnection, AdminContext, isoOrNull, recordAudit } from './admin-context';
import { CreateEnrolmentTokenInput, createEnrolmentTokenSchema } from './admin.schemas';
import { findDevice } from './devices.service';

/*
 * The administration of agent enrolment: tokens (one-time or n-time, expiring) and the revocation
 * of device credentials. Exchanging a token and checking a credential are the agent channel's
 * (agents/enrolment.service.ts).
 */

export interface EnrolmentTokenView {
  id: string;
  hostname: string | null;
  deviceId: string | null;
  collectionId: string | null;
  maxUses: number;
  uses: number;
  expiresAt: string;
  revokedAt: string | null;
  createdAt: string;
}

/** A new token: `token` is the only copy of its secret. */
export interface IssuedEnrolmentToken {
  id: string;
  token: string;
  hostname: string | null;
  deviceId: string | null;
  collectionId: string | null;
  maxUses: number;
  expiresAt: string;
}

/** How many tokens the list shows, newest first. */
const LIST_LIMIT = 500;

/**
 * Restricts `qb` (tokens as `t`) to the tokens `scope` covers (null = all): a token bound to a
 * device in scope, or one for new devices joining a collection in scope. A token for new devices
 * in no collection is global.
 */
function whereTokenInScope<E extends ObjectLiteral>(qb: SelectQueryBuilder<E>, scope: string[] | null): SelectQueryBuilder<E> {
  if (scope === null) return qb;
  const deviceInScope = deviceInScopeSql('t.device_id', scope, () => 'CAST(:tokenScope AS uuid[])');
  return qb.andWhere(
    `((t.device_id IS NOT NULL AND ${deviceInScope}) OR (t.device_id IS NULL AND t.collection_id = ANY(CAST(:tokenScope AS uuid[]))))`,
    { tokenScope: scope },
  );
}

/**
 * Creates a token. Within `scope` (the creator's admin.write; null = all collections):
 * - `deviceId`, or a `hostname` naming an existing device: the token re-keys that device, which
 *   must be in scope (404 otherwise, as GET /v1/devices/:id answers);
 * - otherwise the token creates new devices only, joining `collectionId`, which a scoped creator
 *   must name and hold in scope.
 */
export async function createEnrolmentToken(
  ctx: AdminContext,
  input: CreateEnrolmentTokenInput,
  scope: string[] | null = null,
): Promise<IssuedEnrolmentToken> {
  const t = parseOrThrow(createEnrolmentTokenSchema, input);
  if (t.deviceId && (t.hostname || t.collectionId)) {
    throw new UnprocessableRequest('a token bound to a device (deviceId) takes neither hostname nor collectionId');
  }
  let device: { id: string; hostname: string } | null = null;
  if (t.deviceId) {
    device = await findDevice(ctx.manager, t.deviceId, scope);
    if (!device) throw new NotFound('device', t.deviceId);
  } else if (t.hostname) {
    const existing = await ctx.manager
      .getRepository(Device)
      .createQueryBuilder('d')
      .where('lower(d.hostname) = lower(:hostname)', { hostname: t.hostname })
      .getOne();
    if (existing) {
      device = await findDevice(ctx.manager, existing.id, scope);
      if (!device) throw new NotFound('device', t.hostname);
      if (t.collectionId) throw new UnprocessableRequest(`device ${t.hostname} exists: a token for it takes no collectionId`);
    }
  }
  const collectionId = device ? null : (t.collectionId?.toLowerCase() ?? null);
  if (!device) {
    if (scope !== null && collectionId === null) {
      throw new UnprocessableRequest('an administrator scoped to some collections names the collectionId new devices join');
    }
    if (collectionId !== null) {
      if (scope !== null && !scope.includes(collectionId)) throw new Forbidden(`collection ${collectionId} is outside your scope`);
      if (!(await ctx.manager.getRepository(Collection).existsBy({ id: collectionId }))) {
        throw new UnprocessableRequest(`collectionId ${collectionId} is not a known collection`);
      }
    }
  }
  const id = randomUUID();
  const { secret, hash } = newKeySecret();
  const hostname = device?.hostname ?? t.hostname ?? null;
  const deviceId = device?.id ?? null;
  const expiresAt = new Date(Date.now() + t.expiresInSeconds * 1000);
  await ctx.manager.getRepository(EnrolmentToken).insert({
    id,
    secretHash: hash,
    hostname,
    deviceId,
    collectionId,
    maxUses: t.maxUses,
    expiresAt,
    createdBy: ctx.actorId,
  });
  await recordAudit(ctx, {
    stream: `enrolment:${id}`,
    action: 'enrolment_token.created',
    deviceId,
    data: { hostname, deviceId, collectionId, maxUses: t.maxUses, expiresAt: expiresAt.toISOString() },
  });
  return {
    id,
    token: formatCredential('rce', id, secret),
    hostname,
    deviceId,
    collectionId,
    maxUses: t.maxUses,
    expiresAt: expiresAt.toISOString(),
  };
}

/** The newest tokens `scope` covers (whereTokenInScope), never their secrets. */
export async function listEnrolmentTokens(manager: EntityManager, scope: string[] | null = null): Promise<{ items: EnrolmentTokenView[] }> {
  const qb = manager.getRepository(EnrolmentToken).createQueryBuilder('t');
  const tokens = await whereTokenInScope(qb, scope).orderBy('t.createdAt', 'DESC').take(LIST_LIMIT).getMany();
  return {
    items: tokens.map((t) => ({
      id: t.id,
      hostname: t.hostname,
      deviceId: t.deviceId,
      collectionId: t.collectionId,
      maxUses: t.maxUses,
      uses: t.uses,
      expiresAt: t.expiresAt.toISOString(),
      revokedAt: isoOrNull(t.revokedAt),
      createdAt: t.createdAt.toISOString(),
    })),
  };
}

/** Revokes a token (revoking it again keeps the first revocation time; each call is audited). */
export async function revokeEnrolmentToken(
  ctx: AdminContext,
  id: string,
  scope: string[] | null = null,
): Promise<{ id: string; revoked: true }> {
  const repo = ctx.manager.getRepository(EnrolmentToken);
  const token = await whereTokenInScope(repo.createQueryBuilder('t').where('t.id = :id', { id }), scope)
    .setLock('pessimistic_write')
    .getOne();
  if (!token) throw new NotFound('enrolment token', id);
  if (token.revokedAt === null) await repo.update(id, { revokedAt: () => 'now()' });
  await recordAudit(ctx, { stream: `enrolment:${id}`, action: 'enrolment_token.revoked', deviceId: token.deviceId, data: {} });
  return { id, revoked: true };
}

/**
 * Revokes every credential of a device in `scope` (404 outside it): its agent is refused until it
 * enrols again. Closing its open sockets is the caller's, once this commits.
 */
export async function revokeDeviceCredentials(
  ctx: AdminContext,
  deviceId: string,
  scope: string[] | null = null,
): Promise<{ deviceId: string; revoked: number }> {
  if (!(await findDevice(ctx.manager, deviceId, scope))) throw new NotFound('device', deviceId);
  const result = await ctx.manager.getRepository(DeviceCredential).update({ deviceId, revokedAt: IsNull() }, { revokedAt: () => 'now()' });
  const revoked = result.affected ?? 0;
  await recordAudit(ctx, { stream: `device:${deviceId}`, action: 'device.credentials_revoked', deviceId, data: { revoked } });
  return { deviceId, revoked };
}

/**
 * Enrolment tokens and device credentials, within the caller's admin.write scope (reads within
 * admin.read): any admin.write holder may use them, over the devices and collections it holds.
 */
@Injectable()
export class EnrolmentAdminService {
  constructor(
    private readonly admin: AdminConnection,
    private readonly sockets: AgentSockets,
  ) {}

  createToken(caller: PrincipalFacts, input: CreateEnrolmentTokenInput): Promise<IssuedEnrolmentToken> {
    return this.admin.transaction(caller.id, (ctx) => createEnrolmentToken(ctx, input, scopeOf(caller.grants, 'admin.write')));
  }

  listTokens(caller: PrincipalFacts): Promise<{ items: EnrolmentTokenView[] }> {
    return listEnrolmentTokens(this.admin.manager, this.admin.readScope(caller));
  }

  revokeToken(caller: PrincipalFacts, id: string): Promise<{ id: string; revoked: true }> {
    return this.admin.transaction(caller.id, (ctx) => revokeEnrolmentToken(ctx, id, scopeOf(caller.grants, 'admin.write')));
  }

  /** Revokes, then closes the device's sockets on every API process (a failure to tell them is an error: retry, it is idempotent). */
  async revokeDeviceCredentials(caller: PrincipalFacts, deviceId: string): Promise<{ deviceId: string; revoked: number }> {
    const result = await this.admin.transaction(caller.id, (ctx) =>
      revokeDeviceCredentials(ctx, deviceId, scopeOf(caller.grants, 'admin.write')),
    );
    await this.sockets.credentialsRevoked(deviceId);
    return result;
  }
}
