import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager, IsNull } from 'typeorm';
import { formatCredential } from '@rcflow/agent-protocol';
import { Device, DeviceCredential, EnrolmentToken } from '@rcflow/database';
import { NotFound, PrincipalFacts } from '@rcflow/domain';
import { newKeySecret } from '../auth/api-keys';
import { parseOrThrow } from '../common/validation';
import { AdminConnection, AdminContext, isoOrNull, recordAudit } from './admin-context';
import { CreateEnrolmentTokenInput, createEnrolmentTokenSchema } from './admin.schemas';

/*
 * The administration of agent enrolment: tokens (one-time or n-time, expiring) and the revocation
 * of device credentials. Exchanging a token and checking a credential are the agent channel's
 * (agents/enrolment.service.ts).
 */

export interface EnrolmentTokenView {
  id: string;
  hostname: string | null;
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
  maxUses: number;
  expiresAt: string;
}

/** How many tokens the list shows, newest first. */
const LIST_LIMIT = 500;

export async function createEnrolmentToken(ctx: AdminContext, input: CreateEnrolmentTokenInput): Promise<IssuedEnrolmentToken> {
  const t = parseOrThrow(createEnrolmentTokenSchema, input);
  const id = randomUUID();
  const { secret, hash } = newKeySecret();
  const hostname = t.hostname ?? null;
  const expiresAt = new Date(Date.now() + t.expiresInSeconds * 1000);
  await ctx.manager.getRepository(EnrolmentToken).insert({
    id,
    secretHash: hash,
    hostname,
    maxUses: t.maxUses,
    expiresAt,
    createdBy: ctx.actorId,
  });
  await recordAudit(ctx, {
    stream: `enrolment:${id}`,
    action: 'enrolment_token.created',
    data: { hostname, maxUses: t.maxUses, expiresAt: expiresAt.toISOString() },
  });
  return { id, token: formatCredential('rce', id, secret), hostname, maxUses: t.maxUses, expiresAt: expiresAt.toISOString() };
}

export async function listEnrolmentTokens(manager: EntityManager): Promise<{ items: EnrolmentTokenView[] }> {
  const tokens = await manager.getRepository(EnrolmentToken).find({ order: { createdAt: 'DESC' }, take: LIST_LIMIT });
  return {
    items: tokens.map((t) => ({
      id: t.id,
      hostname: t.hostname,
      maxUses: t.maxUses,
      uses: t.uses,
      expiresAt: t.expiresAt.toISOString(),
      revokedAt: isoOrNull(t.revokedAt),
      createdAt: t.createdAt.toISOString(),
    })),
  };
}

/** Revokes a token (revoking it again keeps the first revocation time; each call is audited). */
export async function revokeEnrolmentToken(ctx: AdminContext, id: string): Promise<{ id: string; revoked: true }> {
  const repo = ctx.manager.getRepository(EnrolmentToken);
  const token = await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  if (!token) throw new NotFound('enrolment token', id);
  if (token.revokedAt === null) await repo.update(id, { revokedAt: () => 'now()' });
  await recordAudit(ctx, { stream: `enrolment:${id}`, action: 'enrolment_token.revoked', data: {} });
  return { id, revoked: true };
}

/** Revokes every credential of a device: its agent is refused until it enrols again. */
export async function revokeDeviceCredentials(ctx: AdminContext, deviceId: string): Promise<{ deviceId: string; revoked: number }> {
  if (!(await ctx.manager.getRepository(Device).existsBy({ id: deviceId }))) throw new NotFound('device', deviceId);
  const result = await ctx.manager.getRepository(DeviceCredential).update({ deviceId, revokedAt: IsNull() }, { revokedAt: () => 'now()' });
  const revoked = result.affected ?? 0;
  await recordAudit(ctx, { stream: `device:${deviceId}`, action: 'device.credentials_revoked', deviceId, data: { revoked } });
  return { deviceId, revoked };
}

/**
 * Enrolment tokens and device credentials. These routes keep the rule they had before they moved
 * here: any admin.write holder may use them (not only one over all collections).
 */
@Injectable()
export class EnrolmentAdminService {
  constructor(private readonly admin: AdminConnection) {}

  createToken(caller: PrincipalFacts, input: CreateEnrolmentTokenInput): Promise<IssuedEnrolmentToken> {
    return this.admin.transaction(caller.id, (ctx) => createEnrolmentToken(ctx, input));
  }

  listTokens(): Promise<{ items: EnrolmentTokenView[] }> {
    return listEnrolmentTokens(this.admin.manager);
  }

  revokeToken(caller: PrincipalFacts, id: string): Promise<{ id: string; revoked: true }> {
    return this.admin.transaction(caller.id, (ctx) => revokeEnrolmentToken(ctx, id));
  }

  revokeDeviceCredentials(caller: PrincipalFacts, deviceId: string): Promise<{ deviceId: string; revoked: number }> {
    return this.admin.transaction(caller.id, (ctx) => revokeDeviceCredentials(ctx, deviceId));
  }
}
