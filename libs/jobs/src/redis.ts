import type { RedisOptions } from 'ioredis';

/** ioredis options from a redis:// or rediss:// URL. */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

interface InfoClient {
  info(section: string): Promise<string>;
}

/**
 * BullMQ only warns when Redis may evict keys; evicted job keys are lost work, so rcflow refuses.
 * Reads INFO (CONFIG is often disabled on managed Redis).
 */
export async function evictionProblem(redis: InfoClient): Promise<string | null> {
  const info = await redis.info('memory');
  const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  if (!policy) return null;
  if (policy !== 'noeviction') {
    return `Redis maxmemory-policy is "${policy}"; rcflow requires "noeviction" (evicted job keys are lost work). Set \`maxmemory-policy noeviction\` in redis.conf or run \`CONFIG SET maxmemory-policy noeviction\`.`;
  }
  return null;
}
