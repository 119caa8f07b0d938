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

/**
 * Production needs the append-only file: without it a Redis restart (a crash, an upgrade, a
 * container replaced) loses every queued job and timer written since its last snapshot. PostgreSQL
 * stays the source of truth (the sweep re-drives sessions), but schedules' timers and ticket notes
 * in flight would wait for it. Reads INFO persistence (CONFIG is often disabled on managed Redis).
 */
export async function aofProblem(redis: InfoClient): Promise<string | null> {
  const info = await redis.info('persistence');
  const enabled = /aof_enabled:(\d)/.exec(info)?.[1];
  if (enabled === undefined || enabled === '1') return null;
  return 'Redis runs without the append-only file (appendonly no); in production rcflow requires it, or a Redis restart loses the queued jobs and timers since its last snapshot. Set `appendonly yes` in redis.conf (or run `CONFIG SET appendonly yes`), or set REDIS_ALLOW_NO_AOF=true to run without it.';
}
