import { DynamicModule, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { BullModule } from '@nestjs/bullmq';
import { Queue } from 'bullmq';
import type { RcflowConfig } from '@rcflow/config';
import { QueueName, defaultJobOptions } from './jobs';
import { OUTBOX_QUEUES, OutboxRelay } from './outbox-relay.service';
import { RedisPolicyGuard } from './redis-policy.guard';
import { redisOptionsFromUrl } from './redis';

/** BullMQ connection, the queues and the outbox relay, for every app that enqueues or works. */
@Module({})
export class QueueModule implements OnApplicationShutdown {
  constructor(@Inject(OUTBOX_QUEUES) private readonly outboxQueues: ReadonlyMap<string, Queue>) {}

  static forRoot(config: RcflowConfig): DynamicModule {
    const base = {
      ...redisOptionsFromUrl(config.redis.url),
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
    };
    return {
      module: QueueModule,
      // Global: intake (libs/sessions) and the apps share one relay and one set of queues.
      global: true,
      imports: [
        BullModule.forRoot({ connection: base, prefix: config.redis.prefix, defaultJobOptions: defaultJobOptions(config.jobs) }),
        BullModule.registerQueue(...Object.values(QueueName).map((name) => ({ name }))),
      ],
      providers: [
        RedisPolicyGuard,
        OutboxRelay,
        {
          provide: OUTBOX_QUEUES,
          // The relay's own producers fail fast while Redis is down (the outbox keeps the rows);
          // workers keep the default connection, which waits for Redis to come back.
          useFactory: () => {
            const logger = new Logger('OutboxQueue');
            let last = 0;
            return new Map(
              Object.values(QueueName).map((name) => {
                const q = new Queue(name, {
                  connection: { ...base, enableOfflineQueue: false },
                  prefix: config.redis.prefix,
                  defaultJobOptions: defaultJobOptions(config.jobs),
                });
                q.on('error', (err) => {
                  if (Date.now() - last > 5000) logger.warn(`Redis: ${err.message}`);
                  last = Date.now();
                });
                return [name, q];
              }),
            );
          },
        },
      ],
      exports: [BullModule, OutboxRelay],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.outboxQueues.values()].map((q) => q.close()));
  }
}
