import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import type { RcflowConfig } from '@rcflow/config';
import { ConsoleSessions } from '../console/console-sessions';
import { EDGE_REDIS, EdgeRedis, connectEdgeRedis } from './edge-redis';
import { KeyRevocations, RedisKeyRevocations } from './key-revocations';
import { RateLimits } from './rate-limits';

/** What every API process shares at its edge through Redis: rate limits, API key revocations, console sessions. */
@Global()
@Module({})
export class EdgeModule implements OnApplicationShutdown {
  constructor(@Inject(EDGE_REDIS) private readonly redis: EdgeRedis) {}

  static forRoot(config: RcflowConfig): DynamicModule {
    return {
      module: EdgeModule,
      providers: [
        { provide: EDGE_REDIS, useFactory: () => connectEdgeRedis(config) },
        RateLimits,
        ConsoleSessions,
        { provide: KeyRevocations, useClass: RedisKeyRevocations },
      ],
      exports: [RateLimits, KeyRevocations, ConsoleSessions],
    };
  }

  onApplicationShutdown(): void {
    this.redis.client.disconnect();
    this.redis.subscriber.disconnect();
  }
}
