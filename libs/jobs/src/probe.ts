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
 * Checks that the database (unless embedded) and Redis answer before a program starts; if one it
 * needs does not, prints one line naming its variable (host and port, never a password) and exits 1.
 * With `redis: 'optional'` (the API: a session request is kept in the outbox while Redis is down)
 * an unreachable Redis is one warning line instead, and the start goes on.
 */
export async function exitUnlessReachable(
  program: string,
  config: RcflowConfig,
  opts: { redis: 'required' | 'optional' } = { redis: 'required' },
): Promise<void> {
  const dbUrl = config.database.url;
  const database: StartupCheck[] = dbUrl
    ? [{ variable: 'DATABASE_URL', shown: describeUrl(dbUrl, 5432), probe: () => probeDatabase(dbUrl) }]
    : [];
  const redis: StartupCheck[] = [{ variable: 'REDIS_URL', shown: redactUrl(config.redis.url), probe: () => probeRedis(config.redis.url) }];
  const problem = await firstStartupProblem(program, opts.redis === 'required' ? [...database, ...redis] : database);
  if (problem) {
    process.stderr.write(`${problem}\n`);
    process.exit(1);
  }
  if (opts.redis === 'optional') {
    const warning = await firstStartupProblem(program, redis);
    if (warning)
      process.stderr.write(
        `${warning.replace('cannot start: ', 'warning: ')}; starting anyway: session requests wait in the outbox until Redis answers\n`,
      );
  }
}
