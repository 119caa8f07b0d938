import IORedis from 'ioredis';
import { SHARED_REDIS_URL, dropRunDatabases, RUN } from './env';

/** Leaves the shared PostgreSQL and Redis as they were before this run. */
export default async function globalTeardown(): Promise<void> {
  await dropRunDatabases();
  const redis = new IORedis(SHARED_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `rcflow_test_${RUN}_*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    /* Redis gone: nothing of ours to remove */
  } finally {
    redis.disconnect();
  }
}
