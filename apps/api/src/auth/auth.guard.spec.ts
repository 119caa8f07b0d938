import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import { loadConfig } from '@rcflow/config';
import { AuthGuard, Public, Requires } from './auth.guard';
import { formatKey, newKeySecret } from './api-keys';

const KEY_ID = '00000000-0000-4000-8000-00000000000a';
const PRINCIPAL = '00000000-0000-4000-8000-0000000000b1';

/** Route handlers whose metadata the guard reads; they are never called. */
class Routes {
  @Requires('session.request')
  create() {
    // needs session.request
  }

  @Public()
  health() {
    // public
  }

  read() {
    // authenticated, no permission
  }
}

const mockGrant = { role: 'remote_tools_operator' };
jest.mock('@rcflow/database', () => ({
  loadPrincipalFacts: async (_manager: unknown, id: string) => ({
    id,
    name: 'alice',
    kind: 'user',
    disabled: false,
    groupNames: [],
    grants: [{ role: mockGrant.role, collectionIds: ['desks'] }],
  }),
}));

/** A DataSource answering the guard's key lookup from memory, counting the lookups. */
function fakeDataSource(hash: string) {
  const seen = { keyLookups: 0, revoked: false };
  const query = async (sql: string): Promise<unknown[]> => {
    await new Promise((r) => setImmediate(r));
    if (!sql.includes('FROM api_keys')) throw new Error(`unexpected query ${sql}`);
    seen.keyLookups++;
    return seen.revoked ? [] : [{ principal_id: PRINCIPAL, secret_hash: hash }];
  };
  return { ds: { query, manager: { query } } as unknown as DataSource, seen };
}

/** The handler functions as Nest hands them to the guard (metadata lives on these very functions). */
const handlers: Record<keyof Routes, unknown> = Routes.prototype;

const context = (handler: keyof Routes, headers: Record<string, string>) => {
  const req = { headers, ip: '127.0.0.1' } as Record<string, unknown>;
  const ctx = {
    getHandler: () => handlers[handler],
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
  return { ctx, req };
};

describe('AuthGuard', () => {
  const config = loadConfig({
    PGLITE_DIR: 'memory',
    AUDIT_HMAC_KEY: 'guard-spec-audit-key-0123456789abcdef012345',
    RATE_LIMIT_PER_MINUTE: '100000',
  });
  const { secret, hash } = newKeySecret();
  const bearer = { authorization: `Bearer ${formatKey(KEY_ID, secret)}` };

  it('authenticates, caches the key, and shares one lookup among requests that miss together', async () => {
    const { ds, seen } = fakeDataSource(hash);
    const guard = new AuthGuard(new Reflector(), ds, config);
    const all = Array.from({ length: 20 }, () => context('create', bearer));
    await expect(Promise.all(all.map((c) => guard.canActivate(c.ctx)))).resolves.toEqual(Array(20).fill(true));
    expect(seen.keyLookups).toBe(1);
    expect(all.every((c) => (c.req.principal as { id: string }).id === PRINCIPAL)).toBe(true);
    await guard.canActivate(context('create', bearer).ctx);
    expect(seen.keyLookups).toBe(1);
  });

  it('refuses a wrong secret for a known key, also once the key is cached', async () => {
    const { ds } = fakeDataSource(hash);
    const guard = new AuthGuard(new Reflector(), ds, config);
    const wrong = { authorization: `Bearer ${formatKey(KEY_ID, newKeySecret().secret)}` };
    await expect(guard.canActivate(context('create', wrong).ctx)).rejects.toMatchObject({ status: 401 });
    await guard.canActivate(context('create', bearer).ctx);
    await expect(guard.canActivate(context('create', wrong).ctx)).rejects.toMatchObject({ status: 401 });
    await expect(guard.canActivate(context('create', {}).ctx)).rejects.toMatchObject({ status: 401 });
  });

  it("checks each route's permission and lets public routes through without a key", async () => {
    const { ds } = fakeDataSource(hash);
    const guard = new AuthGuard(new Reflector(), ds, config);
    mockGrant.role = 'read_only_auditor';
    await expect(guard.canActivate(context('create', bearer).ctx)).rejects.toMatchObject({ status: 403 });
    await expect(guard.canActivate(context('create', bearer).ctx)).rejects.toMatchObject({ status: 403 });
    await expect(guard.canActivate(context('read', bearer).ctx)).resolves.toBe(true);
    await expect(guard.canActivate(context('health', {}).ctx)).resolves.toBe(true);
    await expect(guard.canActivate(context('read', {}).ctx)).rejects.toMatchObject({ status: 401 });
    mockGrant.role = 'remote_tools_operator';
  });

  it('looks a key up again once its entry expires, and then refuses a revoked one', async () => {
    const { ds, seen } = fakeDataSource(hash);
    const guard = new AuthGuard(new Reflector(), ds, config);
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(1_000_000);
      await guard.canActivate(context('create', bearer).ctx);
      seen.revoked = true;
      await guard.canActivate(context('create', bearer).ctx); // still cached
      now.mockReturnValue(1_000_000 + 5001);
      await expect(guard.canActivate(context('create', bearer).ctx)).rejects.toMatchObject({ status: 401 });
      expect(seen.keyLookups).toBe(2);
    } finally {
      now.mockRestore();
    }
  });
});
