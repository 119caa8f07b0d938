import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import type { ConsoleSession, ConsoleSessions } from '../console/console-sessions';
import { LocalKeyRevocations } from '../edge/key-revocations';
import { RateBudgeted, RateLimits } from '../edge/rate-limits';
import { AuthGuard, Public, Requires } from './auth.guard';
import { digestMatches, formatKey, newKeySecret } from './api-keys';

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

  @Public()
  @RateBudgeted('enrol')
  enrol() {
    // public, on a budget of its own
  }

  read() {
    // authenticated, no permission
  }
}

jest.mock('./api-keys', () => {
  const actual: typeof import('./api-keys') = jest.requireActual('./api-keys');
  return { ...actual, digestMatches: jest.fn(actual.digestMatches) };
});
const compared = digestMatches as jest.MockedFunction<typeof digestMatches>;

const mockGrant = { role: 'remote_tools_operator', factLookups: 0 };
jest.mock('@rcflow/database', () => ({
  loadPrincipalFacts: async (_manager: unknown, id: string) => {
    mockGrant.factLookups++;
    return {
      id,
      name: 'alice',
      kind: 'user',
      disabled: false,
      groupNames: [],
      grants: [{ role: mockGrant.role, collectionIds: ['desks'] }],
    };
  },
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

const context = (handler: keyof Routes, headers: Record<string, string>, method = 'GET') => {
  const req = { headers, ip: '127.0.0.1', method } as Record<string, unknown>;
  const ctx = {
    getHandler: () => handlers[handler],
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
  return { ctx, req };
};

/** Rate limits that record what they are asked to count, and refuse nothing. */
function recordingLimits() {
  const taken: [string, string][] = [];
  const limits = {
    consume: async (budget: string, key: string) => {
      taken.push([budget, key]);
    },
  } as unknown as RateLimits;
  return { limits, taken };
}

/** Console sessions held in a map, by cookie value. */
function fakeConsoleSessions(sessions: Record<string, ConsoleSession> = {}) {
  return { resolve: async (sid: string) => sessions[sid] ?? null } as unknown as ConsoleSessions;
}

const guardOn = (
  ds: DataSource,
  revocations = new LocalKeyRevocations(),
  limits = recordingLimits().limits,
  consoleSessions = fakeConsoleSessions(),
) => new AuthGuard(new Reflector(), ds, limits, revocations, consoleSessions);

describe('AuthGuard', () => {
  const { secret, hash } = newKeySecret();
  const bearer = { authorization: `Bearer ${formatKey(KEY_ID, secret)}` };

  it('authenticates, caches the key, and shares one lookup among requests that miss together', async () => {
    const { ds, seen } = fakeDataSource(hash);
    const guard = guardOn(ds);
    const all = Array.from({ length: 20 }, () => context('create', bearer));
    await expect(Promise.all(all.map((c) => guard.canActivate(c.ctx)))).resolves.toEqual(Array(20).fill(true));
    expect(seen.keyLookups).toBe(1);
    expect(all.every((c) => (c.req.principal as { id: string }).id === PRINCIPAL)).toBe(true);
    await guard.canActivate(context('create', bearer).ctx);
    expect(seen.keyLookups).toBe(1);
  });

  it('refuses a wrong secret for a known key, also once the key is cached', async () => {
    const { ds } = fakeDataSource(hash);
    const guard = guardOn(ds);
    const wrong = { authorization: `Bearer ${formatKey(KEY_ID, newKeySecret().secret)}` };
    await expect(guard.canActivate(context('create', wrong).ctx)).rejects.toMatchObject({ status: 401 });
    await guard.canActivate(context('create', bearer).ctx);
    await expect(guard.canActivate(context('create', wrong).ctx)).rejects.toMatchObject({ status: 401 });
    await expect(guard.canActivate(context('create', {}).ctx)).rejects.toMatchObject({ status: 401 });
  });

  it("checks each route's permission and lets public routes through without a key", async () => {
    const { ds } = fakeDataSource(hash);
    const guard = guardOn(ds);
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
    const guard = guardOn(ds);
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

  it('takes the same path for an unknown key id as for a known one: the same lookups, a digest compared, then cached', async () => {
    const { ds, seen } = fakeDataSource(hash);
    const guard = guardOn(ds);
    compared.mockClear();
    const wrong = { authorization: `Bearer ${formatKey(KEY_ID, newKeySecret().secret)}` };
    const unknownId = '00000000-0000-4000-8000-0000000000ff';
    const unknown = { authorization: `Bearer ${formatKey(unknownId, secret)}` };
    mockGrant.factLookups = 0;
    await expect(guard.canActivate(context('create', wrong).ctx)).rejects.toMatchObject({ status: 401 });
    const known = { keys: seen.keyLookups, facts: mockGrant.factLookups, compared: compared.mock.calls.length };
    seen.revoked = true; // the key query now finds no row: an unknown id
    await expect(guard.canActivate(context('create', unknown).ctx)).rejects.toMatchObject({ status: 401 });
    expect({
      keys: seen.keyLookups - known.keys,
      facts: mockGrant.factLookups - known.facts,
      compared: compared.mock.calls.length - known.compared,
    }).toEqual(known);
    // Both are cached: asking again reaches the database for neither.
    for (let i = 0; i < 5; i++) {
      await expect(guard.canActivate(context('create', unknown).ctx)).rejects.toMatchObject({ status: 401 });
      await expect(guard.canActivate(context('create', wrong).ctx)).rejects.toMatchObject({ status: 401 });
    }
    expect(seen.keyLookups).toBe(2);
    expect(compared.mock.calls.length).toBe(12);
  });

  it('drops a revoked key at once when told, without waiting for its cache entry to expire', async () => {
    const { ds, seen } = fakeDataSource(hash);
    const revocations = new LocalKeyRevocations();
    const guard = guardOn(ds, revocations);
    await guard.canActivate(context('create', bearer).ctx);
    seen.revoked = true;
    await guard.canActivate(context('create', bearer).ctx); // cached
    await revocations.publish(KEY_ID);
    await expect(guard.canActivate(context('create', bearer).ctx)).rejects.toMatchObject({ status: 401 });
    expect(seen.keyLookups).toBe(2);
  });

  it('does not cache a lookup that was under way when a revocation arrived', async () => {
    const { ds, seen } = fakeDataSource(hash);
    const revocations = new LocalKeyRevocations();
    const guard = guardOn(ds, revocations);
    const inFlight = guard.canActivate(context('create', bearer).ctx);
    await revocations.publish(KEY_ID); // the lookup read the row before the revocation committed
    await expect(inFlight).resolves.toBe(true);
    seen.revoked = true;
    await expect(guard.canActivate(context('create', bearer).ctx)).rejects.toMatchObject({ status: 401 });
  });

  it('counts a caller with a key per principal, without one per address, and public routes on their budget', async () => {
    const { ds } = fakeDataSource(hash);
    const { limits, taken } = recordingLimits();
    const guard = guardOn(ds, new LocalKeyRevocations(), limits);
    await guard.canActivate(context('create', bearer).ctx);
    await expect(guard.canActivate(context('read', {}).ctx)).rejects.toMatchObject({ status: 401 });
    await expect(guard.canActivate(context('read', { authorization: 'Bearer rcf_nonsense' }).ctx)).rejects.toMatchObject({ status: 401 });
    await guard.canActivate(context('health', {}).ctx);
    await guard.canActivate(context('enrol', {}).ctx);
    expect(taken).toEqual([
      ['principal', PRINCIPAL],
      ['address', '127.0.0.1'],
      ['address', '127.0.0.1'],
      ['address', '127.0.0.1'],
      ['enrol', '127.0.0.1'],
    ]);
  });
  describe('the web console cookie', () => {
    const SID = 'a'.repeat(43);
    const cookie = { cookie: `other=1; rcflow_console=${SID}` };
    const session = { keyId: KEY_ID, principalId: PRINCIPAL, until: Number.MAX_SAFE_INTEGER };

    it("stands for the key it was exchanged for, the key's validity checked again on every request", async () => {
      const { ds, seen } = fakeDataSource(hash);
      const revocations = new LocalKeyRevocations();
      const guard = guardOn(ds, revocations, undefined, fakeConsoleSessions({ [SID]: session }));
      const { ctx, req } = context('read', cookie);
      await expect(guard.canActivate(ctx)).resolves.toBe(true);
      expect((req.principal as { id: string }).id).toBe(PRINCIPAL);
      seen.revoked = true;
      await revocations.publish(KEY_ID);
      await expect(guard.canActivate(context('read', cookie).ctx)).rejects.toMatchObject({ status: 401 });
    });

    it('refuses an unknown session, and a session whose key now belongs to no such principal', async () => {
      const { ds } = fakeDataSource(hash);
      const other = { ...session, principalId: '00000000-0000-4000-8000-0000000000b2' };
      const guard = guardOn(ds, undefined, undefined, fakeConsoleSessions({ [SID]: other }));
      await expect(guard.canActivate(context('read', cookie).ctx)).rejects.toMatchObject({ status: 401 });
      await expect(guard.canActivate(context('read', { cookie: `rcflow_console=${'b'.repeat(43)}` }).ctx)).rejects.toMatchObject({
        status: 401,
      });
    });

    it('lets a write through only with the CSRF header; reads need none', async () => {
      const { ds } = fakeDataSource(hash);
      const guard = guardOn(ds, undefined, undefined, fakeConsoleSessions({ [SID]: session }));
      await expect(guard.canActivate(context('create', cookie, 'POST').ctx)).rejects.toMatchObject({ status: 403 });
      await expect(
        guard.canActivate(context('create', { ...cookie, 'x-requested-with': 'XMLHttpRequest' }, 'POST').ctx),
      ).rejects.toMatchObject({
        status: 403,
      });
      await expect(guard.canActivate(context('create', { ...cookie, 'x-requested-with': 'rcflow-console' }, 'POST').ctx)).resolves.toBe(
        true,
      );
      await expect(guard.canActivate(context('create', cookie, 'GET').ctx)).resolves.toBe(true);
    });

    it('is ignored when the request carries a key: a wrong key is refused even with a good cookie', async () => {
      const { ds } = fakeDataSource(hash);
      const guard = guardOn(ds, undefined, undefined, fakeConsoleSessions({ [SID]: session }));
      const wrong = { authorization: `Bearer ${formatKey(KEY_ID, newKeySecret().secret)}`, ...cookie };
      await expect(guard.canActivate(context('read', wrong).ctx)).rejects.toMatchObject({ status: 401 });
      await expect(guard.canActivate(context('create', { ...bearer, ...cookie }, 'POST').ctx)).resolves.toBe(true);
    });
  });
});
