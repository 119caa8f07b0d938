import IORedis from 'ioredis';
import type { RcflowConfig } from '../../libs/config/src';
import { RedisPolicyGuard } from '../../libs/jobs/src/redis-policy.guard';
import { waitUntil } from '../support/processes';
import { PrivateRedis } from '../support/redis-server';

jest.setTimeout(60_000);

const REFUSAL = /Redis maxmemory-policy is "allkeys-lru"; rcflow requires "noeviction" .*maxmemory-policy noeviction/;

const NO_AOF = /Redis runs without the append-only file .*appendonly yes.*REDIS_ALLOW_NO_AOF=true/;

/** Only what the guard reads of the configuration (`requireAof` is what production without REDIS_ALLOW_NO_AOF sets). */
const configFor = (url: string, requireNoeviction = true, requireAof = false) =>
  ({ redis: { url, prefix: 'unused', requireNoeviction, requireAof } }) as RcflowConfig;

/**
 * The guard that refuses a Redis which may evict keys (evicted job keys are lost work), against
 * private redis-servers started with the policy under test.
 */
describe('RedisPolicyGuard', () => {
  const servers: PrivateRedis[] = [];
  const guards: RedisPolicyGuard[] = [];
  let exit: jest.SpyInstance;

  const server = async (policy: string, opts: { appendonly?: boolean } = {}) => {
    const r = await PrivateRedis.start(policy, opts);
    servers.push(r);
    return r;
  };
  const guard = (config: RcflowConfig) => {
    const g = new RedisPolicyGuard(config);
    guards.push(g);
    return g;
  };

  beforeEach(() => {
    // The guard ends the process on a refusal found after start-up; here the call is recorded instead.
    exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  });
  afterEach(async () => {
    for (const g of guards.splice(0)) g.onApplicationShutdown();
    await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
    exit.mockRestore();
  });

  it('refuses to start against allkeys-lru, saying what to set', async () => {
    const lru = await server('allkeys-lru');
    await expect(guard(configFor(lru.url)).onApplicationBootstrap()).rejects.toThrow(REFUSAL);
  });

  it('accepts noeviction', async () => {
    const ok = await server('noeviction');
    await expect(guard(configFor(ok.url)).onApplicationBootstrap()).resolves.toBeUndefined();
    // The check on the first 'ready' was sent on the same connection before the one awaited above, so it has answered too.
    expect(exit).not.toHaveBeenCalled();
  });

  it('checks nothing when REQUIRE_NOEVICTION is off', async () => {
    const lru = await server('allkeys-lru');
    await expect(guard(configFor(lru.url, false)).onApplicationBootstrap()).resolves.toBeUndefined();
    expect(exit).not.toHaveBeenCalled();
  });

  it('checks again on reconnect: a Redis switched to allkeys-lru ends the process with EX_CONFIG', async () => {
    const r = await server('noeviction');
    await guard(configFor(r.url)).onApplicationBootstrap();
    const admin = new IORedis(r.url, { maxRetriesPerRequest: 1 });
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      expect(exit).not.toHaveBeenCalled();
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes'); // the guard reconnects and checks again
      await waitUntil(async () => exit.mock.calls.length > 0, 20_000, 'the guard to refuse after reconnecting');
      expect(exit).toHaveBeenCalledWith(78);
    } finally {
      admin.disconnect();
    }
  });

  it('starts while Redis is down, and refuses an evicting Redis once it answers', async () => {
    const lru = await server('allkeys-lru');
    await lru.kill();
    await expect(guard(configFor(lru.url)).onApplicationBootstrap()).resolves.toBeUndefined();
    expect(exit).not.toHaveBeenCalled();
    await lru.startProcess();
    await waitUntil(async () => exit.mock.calls.length > 0, 20_000, 'the guard to refuse once Redis answers');
    expect(exit).toHaveBeenCalledWith(78);
  });

  describe('the append-only file (production)', () => {
    it('refuses a Redis without it, naming appendonly and REDIS_ALLOW_NO_AOF', async () => {
      const r = await server('noeviction');
      await expect(guard(configFor(r.url, true, true)).onApplicationBootstrap()).rejects.toThrow(NO_AOF);
    });

    it('accepts a Redis with appendonly yes', async () => {
      const r = await server('noeviction', { appendonly: true });
      await expect(guard(configFor(r.url, true, true)).onApplicationBootstrap()).resolves.toBeUndefined();
      expect(exit).not.toHaveBeenCalled();
    });

    it('is checked when only the append-only file is required (REQUIRE_NOEVICTION off)', async () => {
      const r = await server('allkeys-lru');
      await expect(guard(configFor(r.url, false, true)).onApplicationBootstrap()).rejects.toThrow(NO_AOF);
    });

    it('is not required outside production or with REDIS_ALLOW_NO_AOF=true (requireAof false)', async () => {
      const r = await server('noeviction');
      await expect(guard(configFor(r.url, true, false)).onApplicationBootstrap()).resolves.toBeUndefined();
      expect(exit).not.toHaveBeenCalled();
    });

    it('checks again on reconnect: the append-only file switched off ends the process with EX_CONFIG', async () => {
      const r = await server('noeviction', { appendonly: true });
      await guard(configFor(r.url, true, true)).onApplicationBootstrap();
      const admin = new IORedis(r.url, { maxRetriesPerRequest: 1 });
      try {
        await admin.config('SET', 'appendonly', 'no');
        expect(exit).not.toHaveBeenCalled();
        await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        await waitUntil(async () => exit.mock.calls.length > 0, 20_000, 'the guard to refuse after reconnecting');
        expect(exit).toHaveBeenCalledWith(78);
      } finally {
        admin.disconnect();
      }
    });
  });
});
