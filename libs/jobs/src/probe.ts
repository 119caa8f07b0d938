import IORedis from 'ioredis';
import { type RcflowConfig, type StartupCheck, describeUrl, firstStartupProblem, redactUrl } from '@rcflow/config';
import { probeDatabase } from '@rcflow/database';
import { redisOptionsFromUrl } from './redis';

/** Connects once to Redis at `url` and pings it, without retrying, failing within `timeoutMs`. */
export async function probeRedis(url: string, timeoutMs = 5000): Promise<void> {
  const redis = new IORedis({
    ...redisOptionsFromUrl(url),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // connect() rejects with "Connection is closed"; the error event says why (ECONNREFUSED, ENOTFOUND, auth).
  let cause: unknown = null;
  redis.on('error', (err) => (cause ??= err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw cause ?? err;
  } finally {
    redis.disconnect();
  }
}

/**
 * Checks that the database (unless embedded) and Redis answer before a program starts; if one does
 * not, prints one line naming its variable (host and port, never a password) and exits 1.
 */
export async function exitUnlessReachable(program: string, config: RcflowConfig): Promise<void> {
  const checks: StartupCheck[] = [];
  const dbUrl = config.database.url;
  if (dbUrl) checks.push({ variable: 'DATABASE_URL', shown: describeUrl(dbUrl, 5432), probe: () => probeDatabase(dbUrl) });
  checks.push({ variable: 'REDIS_URL', shown: redactUrl(config.redis.url), probe: () => probeRedis(config.redis.url) });
  const problem = await firstStartupProblem(program, checks);
  if (problem) {
    process.stderr.write(`${problem}\n`);
    process.exit(1);
  }
}
