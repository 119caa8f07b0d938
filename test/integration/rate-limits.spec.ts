import { loadConfig } from '../../libs/config/src';
import { TooManyRequests } from '../../libs/domain/src';
import { EdgeRedis, connectEdgeRedis } from '../../apps/api/src/edge/edge-redis';
import { RateLimits } from '../../apps/api/src/edge/rate-limits';
import { queuePrefix } from '../support/env';
import { PrivateRedis } from '../support/redis-server';
import { waitUntil } from '../support/processes';

jest.setTimeout(60_000);

const LIMIT = 10;

/** What one API process builds: its own connections and limiters, on the Redis it is given. */
function processOn(redisUrl: string, prefix: string): { limits: RateLimits; redis: EdgeRedis } {
  const config = loadConfig({
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    PGLITE_DIR: 'memory',
    AUDIT_HMAC_KEY: 'rate-limits-spec-key-0123456789abcdef0123',
    RATE_LIMIT_PER_MINUTE: String(LIMIT),
    RATE_LIMIT_ADDRESS_PER_MINUTE: String(LIMIT),
  });
  const redis = connectEdgeRedis(config);
  return { limits: new RateLimits(config, redis), redis };
}

/** How many of `n` requests of `key` the processes let through, taking turns. */
async function served(processes: RateLimits[], budget: 'principal' | 'address', key: string, n: number): Promise<number> {
  const outcomes = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      processes[i % processes.length].consume(budget, key).then(
        () => true,
        (err: unknown) => {
          if (err instanceof TooManyRequests) return false;
          throw err;
        },
      ),
    ),
  );
  return outcomes.filter(Boolean).length;
}

/** Rate limits on a real Redis: one budget across API processes, and what happens when Redis is gone. */
describe('RateLimits', () => {
  let redis: PrivateRedis;
  const opened: EdgeRedis[] = [];
  const open = (url: string, prefix: string) => {
    const p = processOn(url, prefix);
    opened.push(p.redis);
    return p;
  };

  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    for (const r of opened) {
      r.client.disconnect();
      r.subscriber.disconnect();
    }
    await redis?.stop();
  });

  it('holds a key to one budget across two processes, and keeps other keys and budgets apart', async () => {
    const prefix = queuePrefix('rl-shared');
    const a = open(redis.url, prefix);
    const b = open(redis.url, prefix);
    await waitUntil(async () => a.redis.client.status === 'ready' && b.redis.client.status === 'ready', 5000, 'redis ready');
    expect(await served([a.limits, b.limits], 'principal', 'alice', LIMIT * 3)).toBe(LIMIT);
    // A flood of other keys (many addresses) does not clear or share alice's count.
    for (let i = 0; i < 50; i++) expect(await served([a.limits], 'address', `198.51.100.${i}`, 1)).toBe(1);
    expect(await served([a.limits, b.limits], 'principal', 'alice', 2)).toBe(0);
    expect(await served([a.limits, b.limits], 'principal', 'bob', LIMIT + 1)).toBe(LIMIT);
    expect(await served([b.limits], 'address', 'alice', 1)).toBe(1);
    await expect(a.limits.consume('principal', 'alice')).rejects.toMatchObject({
      status: 429,
      details: { retryAfterSeconds: expect.any(Number) },
    });
  });

  it('falls back to a per-process budget while Redis cannot be reached, rather than refusing or serving everything', async () => {
    const down = open('redis://127.0.0.1:1', queuePrefix('rl-down'));
    expect(await served([down.limits], 'principal', 'alice', LIMIT * 2)).toBe(LIMIT);
  });
});
