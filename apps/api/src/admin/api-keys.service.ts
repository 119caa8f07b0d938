import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { ApiKey, Principal } from '@rcflow/database';
import { NotFound, PrincipalFacts, UnprocessableRequest } from '@rcflow/domain';
import { formatKey, newKeySecret } from '../auth/api-keys';
import { KeyRevocations } from '../edge/key-revocations';
import { parseOrThrow } from '../common/validation';
import { AdminConnection, AdminContext, MembershipResult, isoOrNull, recordAudit } from './admin-context';
import { Page, PageRequest, keysetPage } from './admin-page';
import { CreateApiKeyInput, createApiKeySchema } from './admin.schemas';

/** An API key as the API shows it: never its secret or hash. */
export interface ApiKeyView {
  id: string;
  principalId: string;
  name: string;
  expiresAt: string | null;
  revokedAt: string | null;
  status: 'active' | 'expired' | 'revoked';
  createdAt: string;
}

/** A new key: `key` is the only copy of its secret. */
export interface IssuedApiKey {
  id: string;
  principalId: string;
  name: string;
  expiresAt: string | null;
  key: string;
}

function apiKeyView(k: ApiKey, now = new Date()): ApiKeyView {
  return {
    id: k.id,
    principalId: k.principalId,
    name: k.name,
    expiresAt: isoOrNull(k.expiresAt),
    revokedAt: isoOrNull(k.revokedAt),
    status: k.revokedAt !== null ? 'revoked' : k.expiresAt !== null && k.expiresAt <= now ? 'expired' : 'active',
    createdAt: k.createdAt.toISOString(),
  };
}

export async function findApiKey(manager: EntityManager, id: string): Promise<ApiKeyView | null> {
  const k = await manager.getRepository(ApiKey).findOneBy({ id });
  return k ? apiKeyView(k) : null;
}

export function listApiKeys(manager: EntityManager, f: PageRequest & { principalId?: string }): Promise<Page<ApiKeyView>> {
  const qb = manager.getRepository(ApiKey).createQueryBuilder('k');
  if (f.principalId) qb.andWhere('k.principalId = :principalId', { principalId: f.principalId });
  return keysetPage(qb, 'k', f, (keys) => keys.map((k) => apiKeyView(k)));
}

/**
 * Issues an API key for a user or service. The result's `key` is the only copy of the secret:
 * only its SHA-256 is stored and the audit event records neither.
 */
export async function createApiKey(ctx: AdminContext, input: CreateApiKeyInput): Promise<IssuedApiKey> {
  const k = parseOrThrow(createApiKeySchema, input);
  const principal = await ctx.manager
    .getRepository(Principal)
    .findOne({ where: { id: k.principalId }, lock: { mode: 'pessimistic_read' } });
  if (!principal) throw new UnprocessableRequest(`principalId ${k.principalId} is not a known principal`);
  if (principal.kind === 'group') throw new UnprocessableRequest(`${principal.name} is a group; API keys belong to users and services`);
  if (principal.disabled) throw new UnprocessableRequest(`${principal.name} is disabled; enable it before issuing keys`);
  const id = randomUUID();
  const { secret, hash } = newKeySecret();
  const expiresAtDate = k.expiresAt ? new Date(k.expiresAt) : null;
  await ctx.manager
    .getRepository(ApiKey)
    .insert({ id, principalId: k.principalId, name: k.name, secretHash: hash, expiresAt: expiresAtDate });
  const expiresAt = isoOrNull(expiresAtDate);
  await recordAudit(ctx, {
    stream: `api_key:${id}`,
    action: 'api_key.created',
    data: { principalId: k.principalId, principalName: principal.name, name: k.name, expiresAt },
  });
  return { id, principalId: k.principalId, name: k.name, expiresAt, key: formatKey(id, secret) };
}

/** Revokes a key (idempotent: revoking a revoked key changes nothing and records nothing). */
export async function revokeApiKey(ctx: AdminContext, id: string): Promise<ApiKeyView & MembershipResult> {
  const repo = ctx.manager.getRepository(ApiKey);
  const key = await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  if (!key) throw new NotFound('API key', id);
  const changed = key.revokedAt === null;
  if (changed) {
    await repo.update(id, { revokedAt: () => 'now()' });
    await recordAudit(ctx, { stream: `api_key:${id}`, action: 'api_key.revoked', data: { principalId: key.principalId, name: key.name } });
  }
  return { ...apiKeyView(await repo.findOneByOrFail({ id })), changed };
}

/** API keys: listed without secrets to any admin.read holder; issued and revoked with admin.write over all collections. */
@Injectable()
export class ApiKeysService {
  constructor(
    private readonly admin: AdminConnection,
    private readonly revocations: KeyRevocations,
  ) {}

  create(caller: PrincipalFacts, input: CreateApiKeyInput): Promise<IssuedApiKey> {
    return this.admin.write(caller, (ctx) => createApiKey(ctx, input));
  }

  /** Once committed, every API process is told to drop the key from its cache. */
  async revoke(caller: PrincipalFacts, id: string): Promise<ApiKeyView & MembershipResult> {
    const revoked = await this.admin.write(caller, (ctx) => revokeApiKey(ctx, id));
    await this.revocations.publish(id);
    return revoked;
  }

  async get(id: string): Promise<ApiKeyView> {
    const k = await findApiKey(this.admin.manager, id);
    if (!k) throw new NotFound('API key', id);
    return k;
  }

  list(f: PageRequest & { principalId?: string }): Promise<Page<ApiKeyView>> {
    return listApiKeys(this.admin.manager, f);
  }
}
