import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import IORedis from 'ioredis';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { aofProblem, evictionProblem, redisOptionsFromUrl } from './redis';

/**
 * Refuses to run against a Redis that may evict keys (REQUIRE_NOEVICTION) or, in production, one
 * without the append-only file (unless REDIS_ALLOW_NO_AOF=true). Checked before start-up completes
 * when Redis answers, and again on every reconnect (Redis may be down at start; intake still works then).
 */
@Injectable()
export class RedisPolicyGuard implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private client: IORedis | null = null;

  constructor(@Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.redis.requireNoeviction && !this.config.redis.requireAof) return;
    this.client = new IORedis({
      ...redisOptionsFromUrl(this.config.redis.url),
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: (times) => Math.min(200 * times, 5000),
    });
    this.client.on('error', () => undefined); // reconnects are retried; the outbox covers the outage
    this.client.on('ready', () => {
      void this.check().then((problem) => {
        if (problem) {
          this.logger.fatal(problem);
          process.exit(78); // EX_CONFIG
        }
      });
    });
    const connected = await Promise.race([
      this.client.connect().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref()),
    ]);
    if (!connected) {
      this.logger.warn(`Redis at ${new URL(this.config.redis.url).host} does not answer; requests are kept in the outbox until it does`);
      return;
    }
    const problem = await this.check();
    if (problem) throw new Error(problem);
  }

  private async check(): Promise<string | null> {
    try {
      const { requireNoeviction, requireAof } = this.config.redis;
      return (requireNoeviction ? await evictionProblem(this.client!) : null) ?? (requireAof ? await aofProblem(this.client!) : null);
    } catch {
      return null;
    }
  }

  onApplicationShutdown(): void {
    this.client?.disconnect();
  }
}
