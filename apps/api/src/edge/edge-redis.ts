import IORedis from 'ioredis';
import type { RcflowConfig } from '@rcflow/config';
import { redisOptionsFromUrl } from '@rcflow/jobs';

export const EDGE_REDIS = Symbol('EDGE_REDIS');

/** The API edge's own Redis connections: rate limits, and the key revocation channel. */
export interface EdgeRedis {
  /** Fails a command at once while disconnected (no offline queue): a limit must not wait for Redis. */
  client: IORedis;
  subscriber: IORedis;
}

/**
 * How long a rate-limit command may wait for Redis before the in-memory insurance limiter decides.
 * Without it a Redis that is connected but silent (a partition, a stalled server) would hold every
 * request until TCP gave up, minutes later; the fault suite's partition case proves the bound.
 */
export const EDGE_COMMAND_TIMEOUT_MS = 500;

export function connectEdgeRedis(config: RcflowConfig): EdgeRedis {
  const options = redisOptionsFromUrl(config.redis.url);
  const client = new IORedis({ ...options, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: EDGE_COMMAND_TIMEOUT_MS });
  const subscriber = new IORedis(options);
  for (const c of [client, subscriber]) c.on('error', () => undefined); // reconnects by itself; users log what matters
  return { client, subscriber };
}
