import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bullmq';
import type { RcflowConfig } from '@rcflow/config';
import { QueueName, defaultJobOptions } from './jobs';
import { OutboxRelay } from './outbox-relay.service';
import { RedisPolicyGuard } from './redis-policy.guard';
import { redisOptionsFromUrl } from './redis';

/** BullMQ connection, the queues and the outbox relay, for every app that enqueues or works. */
@Module({})
export class QueueModule {
  static forRoot(config: RcflowConfig): DynamicModule {
    const base = {
      ...redisOptionsFromUrl(config.redis.url),
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
    };
    return {
      module: QueueModule,
      imports: [
        BullModule.forRoot({
          connection: base,
          prefix: config.redis.prefix,
          defaultJobOptions: defaultJobOptions(config.jobs),
        }),
        // Producers fail fast while Redis is down: the outbox keeps the work and retries.
        BullModule.registerQueue({ name: QueueName.Sessions, connection: { ...base, enableOfflineQueue: false } }),
      ],
      providers: [RedisPolicyGuard, OutboxRelay],
      exports: [BullModule, OutboxRelay],
    };
  }
}
